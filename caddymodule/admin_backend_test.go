package caddymodule

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// TestOperatorCallHost: the Host an operator deletion is sent with, so that the site's host
// matcher takes it: the last DCR call's, else public_url's, else the server's first concrete
// host matcher, else localhost.
func TestOperatorCallHost(t *testing.T) {
	hosts := func(hs ...string) caddy.ModuleMap {
		raw, _ := json.Marshal(hs)
		return caddy.ModuleMap{"host": raw}
	}
	srv := &caddyhttp.Server{Routes: caddyhttp.RouteList{
		{MatcherSetsRaw: []caddy.ModuleMap{{"path": json.RawMessage(`["/x"]`)}}},
		{MatcherSetsRaw: []caddy.ModuleMap{hosts("*.example.com", "{env.HOST}", "gateway.example.com")}},
	}}
	o := &operatorRoute{srv: srv}
	h := &Handler{Endpoint: "/register"}
	if got := o.host(h); got != "gateway.example.com" {
		t.Errorf("from the routes: %q", got)
	}
	h.PublicURL = "https://public.example.com:9443/register"
	if got := o.host(h); got != "public.example.com:9443" {
		t.Errorf("with public_url: %q", got)
	}
	// The Host of a DCR call the handler served is proven to reach it.
	o.sawHost("localhost:8443")
	if got := o.host(h); got != "localhost:8443" {
		t.Errorf("after a DCR call: %q", got)
	}
	bare := &operatorRoute{srv: &caddyhttp.Server{}}
	if got := bare.host(&Handler{}); got != "localhost" {
		t.Errorf("with nothing to go by: %q", got)
	}
	var none *operatorRoute
	none.sawHost("x") // a handler outside a server has no route; the hook must not panic
}

package caddymodule_test

import (
	"net/http"
	"testing"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/redistest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// TestUpstreamOnRedis: the upstream lifecycle with the registrations in Redis: register,
// a client-credentials token through the gateway, GET with it, DELETE, and the backend no
// longer authenticating the client.
func TestUpstreamOnRedis(t *testing.T) {
	redisAddr := redistest.Start(t).Addr()
	port, backendPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	o := upstreamOptions(port, backendPort)
	o.DCRBlock += "\n\t\tstorage redis " + redisAddr + "\n"
	g := gatewaytest.Start(t, o)
	gatewaytest.StartOIDCProvider(t, gatewaytest.OIDCProviderOptions{Issuer: g.BaseURL, InitialAccessToken: upstreamIAT,
		Port: backendPort, TrustedCAFile: g.Sandbox.Files.CABundle, GatewayClientID: "dcrgate", GatewayClientSecret: upstreamGatewaySecret})
	ctx := gatewaytest.Context(t)

	c := newClient(t, g, 1)
	resp, err := c.Register(ctx, sign(t, c, c.Claims(), tppclient.SignOptions{}), tppclient.ContentTypeJOSE, "")
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("register: %v %+v\n%s", err, resp, g.Logs())
	}
	if files := g.StoreFiles("/registrations/"); len(files) != 0 {
		t.Fatalf("registrations in the file store with storage redis: %v", files)
	}
	id := resp.JSON["client_id"].(string)
	status, tok := clientCredentials(t, c, g.BaseURL, id, false)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	cc := tok["access_token"].(string)
	if r, err := c.Get(ctx, id, cc); err != nil || r.Status != http.StatusOK || r.JSON["client_id"] != id {
		t.Fatalf("GET: %v %+v", err, r)
	}
	if r, err := c.Delete(ctx, id, cc); err != nil || r.Status != http.StatusNoContent {
		t.Fatalf("DELETE: %v %+v", err, r)
	}
	if status, m := clientCredentials(t, c, g.BaseURL, id, false); status != http.StatusUnauthorized || m["error"] != "invalid_client" {
		t.Fatalf("the backend still authenticates the deleted client: %d %v", status, m)
	}
	if r, err := c.Get(ctx, id, cc); err != nil || r.Status != http.StatusUnauthorized {
		t.Fatalf("GET after DELETE: %v %+v", err, r)
	}
}

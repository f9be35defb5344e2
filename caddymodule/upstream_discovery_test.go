package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

const backendDiscovery = `{"issuer":"https://as.example","registration_endpoint":"https://as.example/reg",
"token_endpoint_auth_methods_supported":["client_secret_basic","tls_client_auth","private_key_jwt","none"],
"id_token_signing_alg_values_supported":["RS256","PS256","ES256"],
"token_endpoint_auth_signing_alg_values_supported":["HS256","PS256"]}`

func serveDiscovery(t *testing.T, d *Discovery, path string, backend caddyhttp.HandlerFunc) *httptest.ResponseRecorder {
	t.Helper()
	if err := d.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "https://gw.example:8443"+path, nil)
	r.Header.Set("Accept-Encoding", "gzip")
	repl := caddy.NewReplacer()
	repl.Set("http.request.hostport", "gw.example:8443")
	r = r.WithContext(contextWithReplacer(r, repl))
	w := httptest.NewRecorder()
	if err := d.ServeHTTP(w, r, backend); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestDiscoveryRewrite(t *testing.T) {
	backend := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if r.Header.Get("Accept-Encoding") != "" {
			t.Error("the backend was asked for an encoded document the gateway cannot rewrite")
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", "999")
		w.Header().Set("ETag", `"backend"`)
		_, _ = w.Write([]byte(backendDiscovery))
		return nil
	})
	w := serveDiscovery(t, &Discovery{AuthMethods: []string{"tls_client_auth", "private_key_jwt"}, SigningAlgs: []string{"PS256", "ES256"}},
		DefaultDiscoveryPath, backend)
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatalf("%d %s: %v", w.Code, w.Body, err)
	}
	if got["registration_endpoint"] != "https://gw.example:8443/register" || got["issuer"] != "https://as.example" {
		t.Fatalf("document %v", got)
	}
	for field, want := range map[string][]any{
		"token_endpoint_auth_methods_supported":            {"tls_client_auth", "private_key_jwt"},
		"id_token_signing_alg_values_supported":            {"PS256", "ES256"},
		"token_endpoint_auth_signing_alg_values_supported": {"PS256"},
	} {
		if !reflect.DeepEqual(got[field], want) {
			t.Errorf("%s = %v, want %v", field, got[field], want)
		}
	}
	if w.Header().Get("Content-Length") != itoa(w.Body.Len()) || w.Header().Get("Etag") != "" {
		t.Fatalf("headers %v", w.Header())
	}

	// Without trimming, only the registration endpoint changes.
	w = serveDiscovery(t, &Discovery{RegistrationEndpoint: "https://api.example/dcr"}, DefaultDiscoveryPath, backend)
	_ = json.Unmarshal(w.Body.Bytes(), &got)
	if got["registration_endpoint"] != "https://api.example/dcr" || len(got["token_endpoint_auth_methods_supported"].([]any)) != 4 {
		t.Fatalf("untrimmed document %v", got)
	}
}

func TestDiscoveryPassesOtherResponses(t *testing.T) {
	calls := 0
	backend := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		calls++
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("nope"))
		return nil
	})
	if w := serveDiscovery(t, &Discovery{}, DefaultDiscoveryPath, backend); w.Code != 404 || w.Body.String() != "nope" {
		t.Fatalf("a backend error is passed as it is: %d %q", w.Code, w.Body)
	}
	if w := serveDiscovery(t, &Discovery{}, "/token", backend); w.Code != 404 || calls != 2 {
		t.Fatalf("other paths pass untouched: %d, %d calls", w.Code, calls)
	}
	big := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"x":"` + strings.Repeat("a", 300<<10) + `"}`))
		return nil
	})
	d := &Discovery{}
	_ = d.Provision(caddy.Context{})
	r := httptest.NewRequest(http.MethodGet, DefaultDiscoveryPath, nil)
	err := d.ServeHTTP(httptest.NewRecorder(), r, big)
	if he, ok := err.(caddyhttp.HandlerError); !ok || he.StatusCode != http.StatusBadGateway {
		t.Fatalf("oversized document: %v", err)
	}
}

func contextWithReplacer(r *http.Request, repl *caddy.Replacer) context.Context {
	return context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
}

func itoa(n int) string { return strconv.Itoa(n) }

package caddymodule_test

import (
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// TestManagementAuthorization: a registration is managed only with its own registration
// access token, over mTLS with a certificate of the software it belongs to; every other
// combination is the same 401, whether or not the client exists.
func TestManagementAuthorization(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 2})
	ctx := gatewaytest.Context(t)
	c1, c2 := newClient(t, g, 1), newClient(t, g, 2)
	register := func(c *tppclient.Client) (string, string) {
		resp, err := c.Register(ctx, sign(t, c, c.Claims(), tppclient.SignOptions{}), "application/jose", "")
		if err != nil || resp.Status != http.StatusCreated {
			t.Fatalf("register: %v %+v", err, resp)
		}
		return resp.JSON["client_id"].(string), resp.JSON["registration_access_token"].(string)
	}
	id1, tok1 := register(c1)
	id2, tok2 := register(c2)
	noCert := &tppclient.Client{Endpoint: g.Endpoint, HTTP: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: mustPool(t, g.Sandbox)}}}}

	for _, tc := range []struct {
		name   string
		c      *tppclient.Client
		id, tk string
	}{
		{"another client's token", c1, id1, tok2},
		{"own token, another TPP's certificate", c2, id1, tok1},
		{"own token, no certificate", noCert, id1, tok1},
		{"a token for a client that does not exist", c1, "3f1c6f3e-0000-4000-8000-000000000000", tok1},
		{"garbage token", c1, id1, "garbage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, do := range []func() (*tppclient.Response, error){
				func() (*tppclient.Response, error) { return tc.c.Get(ctx, tc.id, tc.tk) },
				func() (*tppclient.Response, error) {
					return tc.c.Update(ctx, tc.id, tc.tk, sign(t, c1, c1.Claims(), tppclient.SignOptions{}))
				},
				func() (*tppclient.Response, error) { return tc.c.Delete(ctx, tc.id, tc.tk) },
			} {
				resp, err := do()
				if err != nil {
					t.Fatal(err)
				}
				if resp.Status != http.StatusUnauthorized || resp.JSON["error"] != "invalid_token" || resp.Header.Get("WWW-Authenticate") == "" {
					t.Fatalf("got %d %v", resp.Status, resp.JSON)
				}
			}
		})
	}
	// Both registrations are untouched and still usable by their owners.
	for _, o := range []struct {
		c      *tppclient.Client
		id, tk string
	}{{c1, id1, tok1}, {c2, id2, tok2}} {
		resp, err := o.c.Get(ctx, o.id, o.tk)
		if err != nil || resp.Status != http.StatusOK || resp.JSON["client_id"] != o.id {
			t.Fatalf("owner's GET: %v %+v", err, resp)
		}
	}
	if n := len(g.StoreFiles("/registrations/")); n != 2 {
		t.Fatalf("%d registrations stored, want 2", n)
	}
}

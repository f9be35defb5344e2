package caddymodule_test

import (
	"net/http"
	"testing"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// TestUpstreamBackendDown: with the backend unreachable a registration is 503 (retryable),
// nothing is stored and the request's jti is not consumed: the same request succeeds once the
// backend is up.
func TestUpstreamBackendDown(t *testing.T) {
	port, backendPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	g := gatewaytest.Start(t, upstreamOptions(port, backendPort))
	ctx := gatewaytest.Context(t)
	c := newClient(t, g, 1)
	body := sign(t, c, c.Claims(), tppclient.SignOptions{})
	resp, err := c.Register(ctx, body, tppclient.ContentTypeJOSE, "")
	if err != nil {
		t.Fatal(err)
	}
	if (resp.Status != http.StatusServiceUnavailable && resp.Status != http.StatusBadGateway) || resp.JSON["error"] == nil {
		t.Fatalf("backend down: %d %v", resp.Status, resp.JSON)
	}
	if files := g.StoreFiles("/registrations/"); len(files) != 0 {
		t.Fatalf("stored with the backend down: %v", files)
	}

	gatewaytest.StartOIDCProvider(t, gatewaytest.OIDCProviderOptions{Issuer: g.BaseURL, InitialAccessToken: upstreamIAT,
		Port: backendPort, TrustedCAFile: g.Sandbox.Files.CABundle})
	resp, err = c.Register(ctx, body, tppclient.ContentTypeJOSE, "")
	if err != nil || resp.Status != http.StatusCreated {
		t.Fatalf("the same request with the backend up: %v %+v", err, resp)
	}
	if files := g.StoreFiles("/registrations/"); len(files) != 1 {
		t.Fatalf("%d records, want 1", len(files))
	}
}

// TestUpstreamBackendRejects: the backend's RFC 7591 error reaches the TPP as it is, nothing
// is stored. The profile accepts an extra metadata value the backend refuses (an unknown
// subject_type).
func TestUpstreamBackendRejects(t *testing.T) {
	g, _ := startUpstream(t)
	ctx := gatewaytest.Context(t)
	c := newClient(t, g, 1)
	claims := c.Claims()
	claims["subject_type"] = "no-such-type"
	resp, err := c.Register(ctx, sign(t, c, claims, tppclient.SignOptions{}), tppclient.ContentTypeJOSE, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusBadRequest || resp.JSON["error"] != "invalid_client_metadata" || resp.JSON["error_description"] == nil {
		t.Fatalf("backend rejection: %d %v", resp.Status, resp.JSON)
	}
	if files := g.StoreFiles("/registrations/"); len(files) != 0 {
		t.Fatalf("stored after the backend refused: %v", files)
	}
}

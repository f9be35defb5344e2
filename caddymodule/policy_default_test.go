package caddymodule_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// TestDefaultPolicyIsOn: a dcr block without a `policy` line runs the embedded default policy
// set, whose per-software limit (10) is the easiest of its rules to see from outside.
func TestDefaultPolicyIsOn(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{TPPs: 1})
	c := newClient(t, g, 1)
	ctx := gatewaytest.Context(t)
	for i := range 10 {
		resp, err := c.Register(ctx, sign(t, c, c.Claims(), tppclient.SignOptions{}), "application/jose", "")
		if err != nil || resp.Status != http.StatusCreated {
			t.Fatalf("registration %d: %v %+v", i+1, err, resp)
		}
	}
	resp, err := c.Register(ctx, sign(t, c, c.Claims(), tppclient.SignOptions{}), "application/jose", "")
	if err != nil || resp.Status != http.StatusBadRequest || !strings.Contains(strings.ToLower(string(resp.Body)), "registrations") {
		t.Fatalf("11th registration: %v %d %s", err, resp.Status, resp.Body)
	}
	if n := len(g.StoreFiles("/registrations/")); n != 10 {
		t.Fatalf("%d registrations stored, want 10", n)
	}
}

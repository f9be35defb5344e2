package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// adminCall is one admin API request to the gateway's admin endpoint.
func adminCall(t *testing.T, adminPort int, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", adminPort, path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: not JSON: %v", method, path, err)
	}
	return resp.StatusCode, out
}

// goneAtBackend asserts that the provider no longer knows the client: its own RFC 7592 GET
// with the backend's registration access token is 401 or 404.
func goneAtBackend(t *testing.T, as *gatewaytest.OIDCProvider, clientID, token string) {
	t.Helper()
	if status, body := backendRead(t, as, clientID, token); status != http.StatusUnauthorized && status != http.StatusNotFound {
		t.Errorf("the backend still has %s after the operator's delete: %d %v", clientID, status, body)
	}
}

// TestUpstreamOperatorDeleteAndStrikeOff: in upstream mode the admin API deletes at the backend
// too (through the dcr handler's own route and reverse_proxy), a strike-off does so for every
// registration of the org, and with the backend down a delete is a JSON 503/502 that changes
// nothing.
func TestUpstreamOperatorDeleteAndStrikeOff(t *testing.T) {
	port, backendPort, adminPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	o := upstreamOptions(port, backendPort)
	o.AdminPort = adminPort
	g := gatewaytest.Start(t, o)
	as := gatewaytest.StartOIDCProvider(t, gatewaytest.OIDCProviderOptions{
		Issuer: g.BaseURL, InitialAccessToken: upstreamIAT, Port: backendPort,
		TrustedCAFile: g.Sandbox.Files.CABundle, GatewayClientID: "dcrgate", GatewayClientSecret: upstreamGatewaySecret,
	})
	c1, c2 := newClient(t, g, 1), newClient(t, g, 2)
	a1, _ := registerOB(t, g, c1, false)
	a2, _ := registerOB(t, g, c1, false)
	b1, _ := registerOB(t, g, c2, false)
	b2, b2Token := registerOB(t, g, c2, false)
	backendToken := map[string]string{}
	for _, id := range []string{a1, a2, b1, b2} {
		backend := storedBackend(t, g, id)
		backendToken[id], _ = backend["registration_access_token"].(string)
		if status, _ := backendRead(t, as, id, backendToken[id]); status != http.StatusOK {
			t.Fatalf("the backend does not know %s after its registration: %d", id, status)
		}
	}

	// One client, as the operator.
	if status, body := adminCall(t, adminPort, http.MethodDelete, "/dcr/clients/"+b1, ""); status != http.StatusOK || body["status"] != "deleted" {
		t.Fatalf("admin DELETE %s = %d %v\n%s", b1, status, body, g.Logs())
	}
	goneAtBackend(t, as, b1, backendToken[b1])
	if status, _ := adminCall(t, adminPort, http.MethodGet, "/dcr/clients/"+b1, ""); status != http.StatusNotFound {
		t.Errorf("show after the admin delete = %d", status)
	}

	// Org 1 struck off: both of its clients, at the backend too; org 2's other client stays.
	org1 := g.Sandbox.TPP(1).OrgID
	status, body := adminCall(t, adminPort, http.MethodPost, "/dcr/revocations", fmt.Sprintf(`{"org_id": %q, "reason": "withdrawn"}`, org1))
	deleted := stringsOf(body["deleted"])
	slices.Sort(deleted)
	want := []string{a1, a2}
	slices.Sort(want)
	if status != http.StatusOK || !slices.Equal(deleted, want) || body["deleted_count"] != float64(2) {
		t.Fatalf("strike-off = %d %v\n%s", status, body, g.Logs())
	}
	goneAtBackend(t, as, a1, backendToken[a1])
	goneAtBackend(t, as, a2, backendToken[a2])
	if status, _ := backendRead(t, as, b2, backendToken[b2]); status != http.StatusOK {
		t.Errorf("the strike-off of org 1 touched org 2's %s at the backend: %d", b2, status)
	}
	if r := registerAs(t, g, 1); r.Status != http.StatusBadRequest || r.JSON["error"] != "invalid_software_statement" {
		t.Errorf("register of the struck-off org = %d %v", r.Status, r.JSON)
	}

	// The backend down: the admin delete is a JSON error and nothing changes.
	as.Stop()
	status, body = adminCall(t, adminPort, http.MethodDelete, "/dcr/clients/"+b2, "")
	if (status != http.StatusServiceUnavailable && status != http.StatusBadGateway) || body["error"] == nil || body["error_description"] == nil {
		t.Fatalf("admin DELETE with the backend down = %d %v", status, body)
	}
	if status, body := adminCall(t, adminPort, http.MethodGet, "/dcr/clients/"+b2, ""); status != http.StatusOK || body["status"] != "live" {
		t.Errorf("the failed delete changed %s: %d %v", b2, status, body)
	}
	// The TPP's own token still works for it: nothing was half deleted.
	if r, err := c2.Get(gatewaytest.Context(t), b2, b2Token); err != nil || r.Status == http.StatusUnauthorized {
		t.Errorf("the TPP's GET after the failed operator delete = %v %v", r, err)
	}

	// A strike-off with the backend down: the deny entry is recorded, the client is reported
	// as not deleted and stays live.
	org2 := g.Sandbox.TPP(2).OrgID
	strike := fmt.Sprintf(`{"org_id": %q, "reason": "withdrawn"}`, org2)
	status, body = adminCall(t, adminPort, http.MethodPost, "/dcr/revocations", strike)
	if status != http.StatusServiceUnavailable && status != http.StatusBadGateway || body["error"] != "incomplete" ||
		len(stringsOf(body["deleted"])) != 0 || fmt.Sprint(body["failed"]) == "[]" {
		t.Fatalf("strike-off with the backend down = %d %v", status, body)
	}
	if _, list := adminCall(t, adminPort, http.MethodGet, "/dcr/revocations", ""); !strings.Contains(fmt.Sprint(list["entries"]), org2) {
		t.Errorf("the deny entry of a partial strike-off is not recorded: %v", list)
	}
	if status, _ := adminCall(t, adminPort, http.MethodGet, "/dcr/clients/"+b2, ""); status != http.StatusOK {
		t.Errorf("a client the strike-off could not delete at the backend is gone from the store: %d", status)
	}
	// The provider back, without the client (it keeps clients in memory): the retry finishes,
	// a backend that no longer knows the client counting as done.
	gatewaytest.StartOIDCProvider(t, gatewaytest.OIDCProviderOptions{
		Issuer: g.BaseURL, InitialAccessToken: upstreamIAT, Port: backendPort,
		TrustedCAFile: g.Sandbox.Files.CABundle, GatewayClientID: "dcrgate", GatewayClientSecret: upstreamGatewaySecret,
	})
	status, body = adminCall(t, adminPort, http.MethodPost, "/dcr/revocations", strike)
	if status != http.StatusOK || !slices.Equal(stringsOf(body["deleted"]), []string{b2}) || body["deny_entry_created"] != false {
		t.Fatalf("the retried strike-off = %d %v\n%s", status, body, g.Logs())
	}
	if status, _ := adminCall(t, adminPort, http.MethodGet, "/dcr/clients/"+b2, ""); status != http.StatusNotFound {
		t.Errorf("after the retried strike-off %s is still live: %d", b2, status)
	}
}

// registerAs registers one more client for TPP index with its default claims.
func registerAs(t *testing.T, g *gatewaytest.Gateway, index int) *tppclient.Response {
	t.Helper()
	c := newClient(t, g, index)
	r, err := c.Register(gatewaytest.Context(t), sign(t, c, c.Claims(), tppclient.SignOptions{}), tppclient.ContentTypeJOSE, "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUpstreamOperatorDeleteMissesTheRoute: after a restart, before any DCR call, the operator
// call goes with public_url's host; when the site does not match it, the admin DELETE is a 502
// that says so, and neither the backend nor the store changed. After one DCR call, its Host
// is used and the delete goes through.
func TestUpstreamOperatorDeleteMissesTheRoute(t *testing.T) {
	port, backendPort, adminPort := gatewaytest.FreePort(t), gatewaytest.FreePort(t), gatewaytest.FreePort(t)
	o := upstreamOptions(port, backendPort)
	o.AdminPort = adminPort
	o.DCRBlock += "\n\t\tpublic_url https://elsewhere.example/register\n"
	g := gatewaytest.Start(t, o)
	as := gatewaytest.StartOIDCProvider(t, gatewaytest.OIDCProviderOptions{
		Issuer: g.BaseURL, InitialAccessToken: upstreamIAT, Port: backendPort,
		TrustedCAFile: g.Sandbox.Files.CABundle, GatewayClientID: "dcrgate", GatewayClientSecret: upstreamGatewaySecret,
	})
	c := newClient(t, g, 1)
	id, rat := registerOB(t, g, c, false)
	token, _ := storedBackend(t, g, id)["registration_access_token"].(string)
	g.Restart()

	status, body := adminCall(t, adminPort, http.MethodDelete, "/dcr/clients/"+id, "")
	if status != http.StatusBadGateway || !strings.Contains(fmt.Sprint(body["error_description"]), "public_url") {
		t.Fatalf("admin DELETE through a route that does not take it = %d %v", status, body)
	}
	if status, _ := backendRead(t, as, id, token); status != http.StatusOK {
		t.Errorf("the backend lost %s although the delete did not run: %d", id, status)
	}
	if status, body := adminCall(t, adminPort, http.MethodGet, "/dcr/clients/"+id, ""); status != http.StatusOK || body["status"] != "live" {
		t.Errorf("the store changed: %d %v", status, body)
	}

	if r, err := c.Get(gatewaytest.Context(t), id, rat); err != nil || r.Status != http.StatusOK {
		t.Fatalf("the TPP's GET: %v %v", r, err)
	}
	if status, body := adminCall(t, adminPort, http.MethodDelete, "/dcr/clients/"+id, ""); status != http.StatusOK {
		t.Fatalf("admin DELETE after a DCR call = %d %v", status, body)
	}
	goneAtBackend(t, as, id, token)
}

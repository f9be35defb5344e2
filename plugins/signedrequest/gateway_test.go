package signedrequest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// dcrBlock is the protection set of the example Caddyfile with extra signed_request and
// directory options.
func dcrBlock(signedRequestOptions, directoryOptions string) string {
	return `
		mtls
		software_statement {
			directory "OpenBanking Ltd" {
				jwks_file {{SANDBOX}}/directory/jwks.json
				jwks_hosts localhost:{{PORT}}
				` + directoryOptions + `
			}
			fetch {
				tls_trust_pool file {{SANDBOX}}/ca/bundle.pem
			}
		}
		signed_request {
			audience {{BASE}}
			fetch {
				tls_trust_pool file {{SANDBOX}}/ca/bundle.pem
			}
			` + signedRequestOptions + `
		}
`
}

func client(t *testing.T, g *gatewaytest.Gateway, index int) *tppclient.Client {
	t.Helper()
	c, err := tppclient.FromSandbox(g.Sandbox, g.Sandbox.TPP(index), g.Endpoint, g.BaseURL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sign(t *testing.T, c *tppclient.Client) []byte {
	t.Helper()
	body, err := c.Sign(c.Claims(), tppclient.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func register(t *testing.T, g *gatewaytest.Gateway, c *tppclient.Client) *tppclient.Response {
	t.Helper()
	resp, err := c.Register(gatewaytest.Context(t), sign(t, c), "", "")
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func wantStatus(t *testing.T, g *gatewaytest.Gateway, what string, resp *tppclient.Response, status int, code, contains string) {
	t.Helper()
	if resp.Status != status || (code != "" && resp.JSON["error"] != code) || !strings.Contains(fmt.Sprint(resp.JSON["error_description"]), contains) {
		t.Fatalf("%s: %d %s, want %d %s with %q\n%s", what, resp.Status, resp.Body, status, code, contains, g.Logs())
	}
}

// auditLines stops the gateway (so its log is complete) and returns its audit lines.
func auditLines(g *gatewaytest.Gateway) []map[string]any {
	g.Stop()
	return g.AuditLines()
}

// revokeSigningKey runs `caddy dcr sandbox revoke --signing-key` for TPP index, as an
// operator of the sandbox would.
func revokeSigningKey(t *testing.T, g *gatewaytest.Gateway, index int) {
	t.Helper()
	out, err := g.Command("dcr", "sandbox", "revoke", "--dir", g.Sandbox.Dir, "--tpp", fmt.Sprint(index), "--signing-key").CombinedOutput()
	if err != nil {
		t.Fatalf("sandbox revoke: %v\n%s", err, out)
	}
}

// TestGatewayRevokedSigningKey: TPP 1's request-signing key is revoked in the sandbox after
// both TPPs registered. The gateway (restarted, so its cached revoked sets are fresh) refuses
// TPP 1's new registration naming the key and the list, and its existing registration's
// GET, PUT and DELETE with the one 401 (the audit log says revoked); TPP 2 is unaffected,
// and nothing stored changes on a refusal.
func TestGatewayRevokedSigningKey(t *testing.T) {
	g := gatewaytest.Start(t, gatewaytest.Options{DCRBlock: dcrBlock("", "")})
	ctx := gatewaytest.Context(t)
	c1, c2 := client(t, g, 1), client(t, g, 2)
	reg1, reg2 := register(t, g, c1), register(t, g, c2)
	wantStatus(t, g, "TPP 1 register", reg1, http.StatusCreated, "", "")
	wantStatus(t, g, "TPP 2 register", reg2, http.StatusCreated, "", "")
	s1, err := tppclient.StateFromResponse(reg1)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := tppclient.StateFromResponse(reg2)
	if err != nil {
		t.Fatal(err)
	}

	revokeSigningKey(t, g, 1)
	g.Restart()
	stored := g.StoreFiles("/registrations/")
	storedBytes := map[string]string{}
	for _, f := range stored {
		b, _ := os.ReadFile(f)
		storedBytes[f] = string(b)
	}

	kid := g.Sandbox.TPP(1).SigningKID
	wantStatus(t, g, "TPP 1 register with the revoked key", register(t, g, c1), http.StatusBadRequest, "invalid_client_metadata",
		fmt.Sprintf(`the request signing key %q is revoked: it is listed (by kid) in the revoked key set at %s`, kid, g.Sandbox.TPP(1).JWKSRevokedURL))
	wantStatus(t, g, "TPP 2 register", register(t, g, c2), http.StatusCreated, "", "")

	for name, call := range map[string]func() (*tppclient.Response, error){
		"GET": func() (*tppclient.Response, error) { return c1.Get(ctx, s1.ClientID, s1.RegistrationAccessToken) },
		"PUT": func() (*tppclient.Response, error) {
			return c1.Update(ctx, s1.ClientID, s1.RegistrationAccessToken, sign(t, c1))
		},
		"DELETE": func() (*tppclient.Response, error) { return c1.Delete(ctx, s1.ClientID, s1.RegistrationAccessToken) },
	} {
		resp, err := call()
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, g, "TPP 1 "+name, resp, http.StatusUnauthorized, "invalid_token", "does not authorize this call")
	}
	resp, err := c2.Get(ctx, s2.ClientID, s2.RegistrationAccessToken)
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("TPP 2 GET: %v %+v", err, resp)
	}
	// Nothing stored changed for TPP 1 (TPP 2's second registration added one record).
	for f, before := range storedBytes {
		if b, err := os.ReadFile(f); err != nil || string(b) != before {
			t.Fatalf("%s changed on a refusal: %v", f, err)
		}
	}
	if n := len(g.StoreFiles("/registrations/")); n != len(stored)+1 {
		t.Fatalf("%d registration files, want %d", n, len(stored)+1)
	}

	revoked := 0
	for _, l := range auditLines(g) {
		if l["client_id"] == s1.ClientID && l["status"] == float64(401) {
			if !strings.HasPrefix(fmt.Sprint(l["reason"]), "revoked: ") || !strings.Contains(fmt.Sprint(l["reason"]), kid) {
				t.Fatalf("audit line %v, want reason revoked", l)
			}
			revoked++
		}
	}
	if revoked != 3 {
		t.Fatalf("%d audit lines of refused management calls, want 3", revoked)
	}
}

// TestGatewayRevokedSetDown: the software revoked-key set is not served (its file is gone).
// Under the default hard fail the registration is refused with 503 and Retry-After; under
// soft fail it is accepted and the gateway logs a warning naming the URL.
func TestGatewayRevokedSetDown(t *testing.T) {
	for _, tc := range []struct {
		mode   string
		status int
	}{{"", http.StatusServiceUnavailable}, {"soft", http.StatusCreated}} {
		t.Run("fail_mode "+tc.mode, func(t *testing.T) {
			options := ""
			if tc.mode != "" {
				options = "revoked_keys {\n\t\t\t\tfail_mode " + tc.mode + "\n\t\t\t}"
			}
			g := gatewaytest.Start(t, gatewaytest.Options{DCRBlock: dcrBlock(options, "")})
			sw, _ := g.Sandbox.TPP(1).RevokedJWKSFiles()
			if err := os.Remove(sw); err != nil {
				t.Fatal(err)
			}
			url := g.Sandbox.TPP(1).JWKSRevokedURL
			resp := register(t, g, client(t, g, 1))
			if tc.status == http.StatusServiceUnavailable {
				wantStatus(t, g, "register", resp, tc.status, "temporarily_unavailable", "the revoked key set at "+url+" cannot be fetched")
				if resp.Header.Get("Retry-After") == "" {
					t.Fatal("503 without Retry-After")
				}
				if n := len(g.StoreFiles("/registrations/")); n != 0 {
					t.Fatalf("%d registrations stored on a 503", n)
				}
				return
			}
			wantStatus(t, g, "register", resp, tc.status, "", "")
			g.Stop()
			var warned bool
			for _, line := range strings.Split(g.Logs(), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil && m["level"] == "warn" && m["url"] == url &&
					strings.Contains(fmt.Sprint(m["msg"]), "revoked key set cannot be fetched") {
					warned = true
				}
			}
			if !warned {
				t.Fatalf("no warning naming %s:\n%s", url, g.Logs())
			}
		})
	}
}

// TestGatewayEmbeddedJWKS: an SSA carrying its keys as software_jwks (no
// software_jwks_endpoint) registers where the directory allows embedded key sets and is
// refused where it does not; a key revoked in the SSA's revoked set is refused from the
// embedded set too.
func TestGatewayEmbeddedJWKS(t *testing.T) {
	for _, tc := range []struct {
		name      string
		directory string
		status    int
		code      string
		want      string
	}{
		{"allowed", "embedded_jwks", http.StatusCreated, "", ""},
		{"not allowed (default)", "", http.StatusBadRequest, "invalid_software_statement", `directory "OpenBanking Ltd" does not allow an embedded software_jwks`},
		{"turned off", "embedded_jwks off", http.StatusBadRequest, "invalid_software_statement", "does not allow an embedded software_jwks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := gatewaytest.Start(t, gatewaytest.Options{DCRBlock: dcrBlock("", tc.directory)})
			c := embeddedClient(t, g, 1)
			wantStatus(t, g, "register", register(t, g, c), tc.status, tc.code, tc.want)
			if tc.status != http.StatusCreated {
				return
			}
			revokeSigningKey(t, g, 2)
			g.Restart()
			wantStatus(t, g, "register with a revoked embedded key", register(t, g, embeddedClient(t, g, 2)), http.StatusBadRequest, "invalid_client_metadata", "is revoked")
		})
	}
}

// embeddedClient is TPP index's client with an SSA that embeds its key set instead of naming
// its software_jwks_endpoint.
func embeddedClient(t *testing.T, g *gatewaytest.Gateway, index int) *tppclient.Client {
	t.Helper()
	tpp := g.Sandbox.TPP(index)
	data, err := os.ReadFile(tpp.JWKSFile)
	if err != nil {
		t.Fatal(err)
	}
	var set map[string]any
	if err := json.Unmarshal(data, &set); err != nil {
		t.Fatal(err)
	}
	claims := g.Sandbox.SSAClaims(tpp)
	delete(claims, "software_jwks_endpoint")
	claims["software_jwks"] = set
	ssa, err := g.Sandbox.SignSSA(claims)
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, g, index)
	if err := c.SetSoftwareStatement(ssa); err != nil {
		t.Fatal(err)
	}
	return c
}

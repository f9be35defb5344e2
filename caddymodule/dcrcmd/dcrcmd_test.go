package dcrcmd

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/spf13/cobra"

	"github.com/dcrgate/dcrgate/internal/sandbox"
	"github.com/dcrgate/dcrgate/internal/tppclient"
	"github.com/dcrgate/dcrgate/internal/tppclient/tppclienttest"
)

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	var out, errw bytes.Buffer
	code := Execute(args, &out, &errw)
	return result{code, out.String(), errw.String()}
}

func (r result) want(t *testing.T, code int) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	return r
}

// A sandbox shared by the client tests (building one costs several RSA keys). Each test that
// writes state uses its own --state file.
var (
	sbOnce sync.Once
	sbErr  error
	shared *sandbox.Sandbox
)

func testSandbox(t *testing.T) *sandbox.Sandbox {
	t.Helper()
	sbOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dcrcmd-sandbox-")
		if err != nil {
			sbErr = err
			return
		}
		shared, sbErr = sandbox.Init(sandbox.Options{Dir: dir, TPPs: 2})
	})
	if sbErr != nil {
		t.Fatal(sbErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		os.RemoveAll(shared.Dir)
	}
	os.Exit(code)
}

func lastClaims(t *testing.T, srv *tppclienttest.Server) (map[string]any, map[string]any) {
	t.Helper()
	body := string(srv.Last().Body)
	hdr, err := tppclient.DecodeHeader(body)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := tppclient.DecodeClaims(body)
	if err != nil {
		t.Fatal(err)
	}
	return hdr, claims
}

func TestRegisteredWithCaddy(t *testing.T) {
	cmd, ok := caddycmd.Commands()["dcr"]
	if !ok || cmd.CobraFunc == nil || cmd.Short == "" {
		t.Fatalf("dcr is not registered: %+v", cmd)
	}
	root := &cobra.Command{Use: "dcr"}
	cmd.CobraFunc(root)
	names := map[string]bool{}
	for _, c := range root.Commands() {
		names[c.Name()] = true
	}
	for _, n := range []string{"sandbox", "register", "get", "update", "delete", "clients"} {
		if !names[n] {
			t.Errorf("subcommand %s missing", n)
		}
	}
	// Under caddycmd.Main the exit code travels in the returned error: 2 must not collapse to 1.
	root.SetArgs([]string{"register", "--no-such-flag"})
	root.SetOut(&bytes.Buffer{})
	root.SetErr(&bytes.Buffer{})
	if err := root.Execute(); err == nil || err.Error() != "exiting with status 2" {
		t.Errorf("usage error under caddy = %v, want caddy's exit status 2", err)
	}
}

func TestSandboxInit(t *testing.T) {
	t.Parallel() // RSA key generation dominates; overlap it with the client tests
	dir := filepath.Join(t.TempDir(), "sb")
	r := run(t, "sandbox", "init", "--dir", dir, "--tpps", "2", "--host", "gw.test", "--base-url", "https://gw.test:9443").want(t, ExitOK)
	sb, err := sandbox.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.TPPs) != 2 || sb.BaseURL != "https://gw.test:9443" || sb.Host != "gw.test" {
		t.Errorf("sandbox = %+v", sb)
	}
	for _, want := range []string{sb.TPPs[0].SoftwareID, sb.TPPs[1].OrgID, "ca/bundle.pem", "server/cert.pem", "tpps/2/ssa.jwt", "https://gw.test:9443/sandbox/jwks/" + sb.TPPs[0].SoftwareID + ".json"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = run(t, "sandbox", "init", "--dir", dir).want(t, ExitRejected)
	if !strings.Contains(r.stderr, "already contains a sandbox") {
		t.Errorf("stderr = %s", r.stderr)
	}
	run(t, "sandbox", "init", "--dir", dir, "--force").want(t, ExitOK)
	if again, _ := sandbox.Load(dir); len(again.TPPs) != 1 || again.TPPs[0].SoftwareID == sb.TPPs[0].SoftwareID {
		t.Error("--force did not rebuild the sandbox")
	}
}

func TestUsageErrors(t *testing.T) {
	sb := testSandbox(t)
	for name, args := range map[string][]string{
		"init without --dir":     {"sandbox", "init"},
		"init with 0 TPPs":       {"sandbox", "init", "--dir", t.TempDir(), "--tpps", "0"},
		"unknown flag":           {"register", "--bogus"},
		"bad flag value":         {"register", "--exp", "soon"},
		"unknown subcommand":     {"frobnicate"},
		"unknown sandbox cmd":    {"sandbox", "destroy"},
		"positional argument":    {"get", "extra"},
		"no TPP material":        {"register"},
		"no such TPP":            {"register", "--sandbox", sb.Dir, "--tpp", "9"},
		"bad --claim":            {"register", "--sandbox", sb.Dir, "--claim", "noequals"},
		"relative endpoint":      {"register", "--sandbox", sb.Dir, "--endpoint", "/register"},
		"nothing to get":         {"get", "--sandbox", sb.Dir, "--state", filepath.Join(t.TempDir(), "none.json")},
		"fresh SSA w/o sandbox":  {"register", "--cert", sb.TPPs[0].TransportCert, "--key", sb.TPPs[0].TransportKey, "--signing-key", sb.TPPs[0].SigningKey, "--fresh-ssa"},
		"explicit without a key": {"register", "--cert", sb.TPPs[0].TransportCert, "--key", sb.TPPs[0].TransportKey, "--ssa", sb.TPPs[0].SSAFile},
	} {
		t.Run(name, func(t *testing.T) {
			r := run(t, args...).want(t, ExitUsage)
			if !strings.Contains(r.stderr, "Error:") {
				t.Errorf("no error message: %q", r.stderr)
			}
		})
	}
	run(t).want(t, ExitOK) // bare `caddy dcr` prints help
}

func TestRegisterGetUpdateDeleteWithSandbox(t *testing.T) {
	sb := testSandbox(t)
	tpp := sb.TPPs[0]
	srv := tppclienttest.NewServer(t, sb, nil)
	state := filepath.Join(t.TempDir(), "reg.json")
	conn := []string{"--sandbox", sb.Dir, "--endpoint", srv.Endpoint(), "--state", state}

	r := run(t, append([]string{"register", "--print-request", "--exp", "10m", "--iat", "-1m",
		"--claim", "scope=openid accounts", "--claim", `grant_types=["client_credentials"]`, "--claim", "-application_type", "--bearer", "iat-token"}, conn...)...).want(t, ExitOK)
	if !strings.HasPrefix(r.stdout, "Request header:") || !strings.Contains(r.stdout, "HTTP 201 Created\n{\n  \"client_id\"") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, state) {
		t.Errorf("does not say where the state went: %s", r.stderr)
	}
	req := srv.Last()
	if req.Method != http.MethodPost || req.Path != "/register" || req.ContentType != "application/jose" || req.Authorization != "Bearer iat-token" {
		t.Errorf("request = %+v", req)
	}
	if req.ClientCert == nil || req.ClientCert.Subject.String() != tpp.TransportSubjectDN {
		t.Errorf("client certificate = %v", req.ClientCert)
	}
	jwksBytes, _ := os.ReadFile(tpp.JWKSFile)
	set, _ := jwk.Parse(jwksBytes)
	if _, err := jws.Verify(req.Body, jws.WithKeySet(set)); err != nil {
		t.Errorf("request does not verify with the TPP JWKS: %v", err)
	}
	hdr, claims := lastClaims(t, srv)
	if hdr["alg"] != "PS256" || hdr["kid"] != tpp.SigningKID {
		t.Errorf("header = %v", hdr)
	}
	now := float64(time.Now().Unix())
	if exp := claims["exp"].(float64); exp < now+590 || exp > now+610 {
		t.Errorf("exp = %v, want now+10m", exp)
	}
	if iat := claims["iat"].(float64); iat < now-70 || iat > now-50 {
		t.Errorf("iat = %v, want now-1m", iat)
	}
	if claims["scope"] != "openid accounts" || claims["aud"] != srv.URL || claims["iss"] != tpp.SoftwareID {
		t.Errorf("claims = %v", claims)
	}
	if g, _ := json.Marshal(claims["grant_types"]); string(g) != `["client_credentials"]` {
		t.Errorf("grant_types = %s", g)
	}
	if _, has := claims["application_type"]; has {
		t.Error("-application_type did not remove the claim")
	}
	if ssa, _ := tpp.SSA(); claims["software_statement"] != ssa {
		t.Error("software_statement is not the sandbox ssa.jwt")
	}
	st, err := tppclient.LoadState(state)
	if err != nil || st.ClientID == "" || st.RegistrationAccessToken == "" || st.Endpoint != srv.Endpoint() || st.SoftwareID != tpp.SoftwareID {
		t.Fatalf("state = %+v, %v", st, err)
	}

	r = run(t, append([]string{"get"}, conn...)...).want(t, ExitOK)
	if req := srv.Last(); req.Method != http.MethodGet || req.Path != "/register/"+st.ClientID || req.Authorization != "Bearer "+st.RegistrationAccessToken {
		t.Errorf("get request = %+v", req)
	}
	if !strings.Contains(r.stdout, "HTTP 200 OK") {
		t.Errorf("stdout = %s", r.stdout)
	}

	run(t, append([]string{"update", "--alg", "ES256", "--claim", "client_name=renamed"}, conn...)...).want(t, ExitOK)
	req = srv.Last()
	if req.Method != http.MethodPut || req.Path != "/register/"+st.ClientID || req.ContentType != "application/jose" || req.Authorization != "Bearer "+st.RegistrationAccessToken {
		t.Errorf("update request = %+v", req)
	}
	if hdr, claims := lastClaims(t, srv); hdr["alg"] != "ES256" || hdr["kid"] != tpp.SigningKIDEC || claims["client_name"] != "renamed" {
		t.Errorf("update header %v claims %v", hdr, claims)
	}
	if _, err := jws.Verify(req.Body, jws.WithKeySet(set)); err != nil {
		t.Errorf("ES256 update does not verify: %v", err)
	}

	r = run(t, append([]string{"get", "--token", "wrong"}, conn...)...).want(t, ExitRejected)
	if !strings.Contains(r.stdout, "HTTP 401 Unauthorized") || !strings.Contains(r.stdout, `"error": "invalid_token"`) {
		t.Errorf("stdout = %s", r.stdout)
	}

	run(t, append([]string{"delete"}, conn...)...).want(t, ExitOK)
	if req := srv.Last(); req.Method != http.MethodDelete || req.Path != "/register/"+st.ClientID {
		t.Errorf("delete request = %+v", req)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("state file still there after 204: %v", err)
	}
	run(t, append([]string{"get"}, conn...)...).want(t, ExitUsage)
	run(t, append([]string{"get", "--client-id", st.ClientID, "--token", st.RegistrationAccessToken}, conn...)...).want(t, ExitRejected)
}

func TestDefaultStateFileInSandbox(t *testing.T) {
	sb := testSandbox(t)
	srv := tppclienttest.NewServer(t, sb, nil)
	run(t, "register", "--sandbox", sb.Dir, "--tpp", "2", "--endpoint", srv.Endpoint()).want(t, ExitOK)
	path := filepath.Join(sb.TPPs[1].Dir, "registration.json")
	t.Cleanup(func() { os.Remove(path) })
	st, err := tppclient.LoadState(path)
	if err != nil || st.SoftwareID != sb.TPPs[1].SoftwareID {
		t.Fatalf("state = %+v, %v", st, err)
	}
	if c := srv.Last().ClientCert; c == nil || c.Subject.CommonName != sb.TPPs[1].SoftwareID {
		t.Errorf("TPP 2 did not present its own certificate")
	}
	run(t, "delete", "--sandbox", sb.Dir, "--tpp", "2", "--endpoint", srv.Endpoint()).want(t, ExitOK)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("delete left the default state file")
	}
}

func TestRejectionExitsOne(t *testing.T) {
	sb := testSandbox(t)
	srv := tppclienttest.NewServer(t, sb, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_software_statement","error_description":"bad <ssa>"}`))
	}))
	state := filepath.Join(t.TempDir(), "reg.json")
	r := run(t, "register", "--sandbox", sb.Dir, "--endpoint", srv.Endpoint(), "--state", state).want(t, ExitRejected)
	want := "HTTP 400 Bad Request\n{\n  \"error\": \"invalid_software_statement\",\n  \"error_description\": \"bad <ssa>\"\n}\n"
	if r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Error("a rejected registration wrote a state file")
	}
	// Unreachable endpoint: also 1.
	srv.Close()
	run(t, "register", "--sandbox", sb.Dir, "--endpoint", srv.Endpoint(), "--state", state).want(t, ExitRejected)
}

func TestExplicitFilesAndNegativeKnobs(t *testing.T) {
	sb := testSandbox(t)
	tpp := sb.TPPs[0]
	srv := tppclienttest.NewServer(t, sb, nil)
	state := filepath.Join(t.TempDir(), "reg.json")
	run(t, "register", "--endpoint", srv.Endpoint(), "--state", state,
		"--cert", tpp.TransportCert, "--key", tpp.TransportKey, "--ca", sb.Files.CABundle,
		"--ssa", tpp.SSAFile, "--signing-key", tpp.SigningKey, "--kid", "my-kid", "--software-id", "override-id",
		"--audience", "https://issuer.example", "--content-type", "application/json", "--alg", "RS256").want(t, ExitOK)
	req := srv.Last()
	if req.ContentType != "application/json" || req.ClientCert == nil {
		t.Errorf("request = %+v", req)
	}
	hdr, claims := lastClaims(t, srv)
	if hdr["kid"] != "my-kid" || hdr["alg"] != "RS256" || claims["iss"] != "override-id" || claims["aud"] != "https://issuer.example" {
		t.Errorf("header %v claims iss=%v aud=%v", hdr, claims["iss"], claims["aud"])
	}

	// --kid "" omits the header; --alg none sends an unsigned JWS; --ssa-claim re-signs the SSA.
	run(t, "register", "--sandbox", sb.Dir, "--endpoint", srv.Endpoint(), "--state", state, "--kid", "", "--alg", "none",
		"--ssa-claim", "software_roles=[\"AISP\"]", "--ssa-claim", "-org_status").want(t, ExitOK)
	hdr, claims = lastClaims(t, srv)
	if _, has := hdr["kid"]; has || hdr["alg"] != "none" {
		t.Errorf("header = %v", hdr)
	}
	ssa, _ := claims["software_statement"].(string)
	ssaClaims, err := tppclient.DecodeClaims(ssa)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := json.Marshal(ssaClaims["software_roles"]); string(r) != `["AISP"]` || ssaClaims["org_status"] != nil {
		t.Errorf("fresh SSA claims = %v", ssaClaims)
	}
	dirSet, _ := sb.DirectoryJWKS()
	if _, err := jws.Verify([]byte(ssa), jws.WithKeySet(dirSet)); err != nil {
		t.Errorf("fresh SSA does not verify with the directory JWKS: %v", err)
	}
}

package sandbox

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

var (
	orgIDShape      = regexp.MustCompile(`^0015800001[0-9A-Za-z]{8}$`)
	softwareIDShape = regexp.MustCompile(`^[0-9A-Za-z]{22}$`)
	uuidShape       = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

func newSandbox(t *testing.T, opts Options) *Sandbox {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	sb, err := Init(opts)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return sb
}

func bundlePool(t *testing.T, sb *Sandbox) *x509.CertPool {
	t.Helper()
	pool, err := sb.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func TestInitLayoutAndPermissions(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, Options{TPPs: 2})
	if len(sb.TPPs) != 2 || sb.TPPs[0].Index != 1 || sb.TPPs[1].Index != 2 {
		t.Fatalf("TPPs = %+v", sb.TPPs)
	}
	public := []string{"sandbox.json", "ca/root.pem", "ca/issuing.pem", "ca/bundle.pem", "server/cert.pem", "directory/jwks.json"}
	private := []string{"ca/issuing.key", "server/key.pem", "directory/signing.key"}
	for _, tpp := range sb.TPPs {
		rel := func(p string) string { r, _ := filepath.Rel(sb.Dir, p); return r }
		public = append(public, rel(tpp.TransportCert), rel(tpp.SSAFile), rel(tpp.JWKSFile), rel(tpp.OrgJWKSFile), rel(filepath.Join(tpp.Dir, "tpp.json")),
			"jwks/"+tpp.SoftwareID+".revoked.json", "jwks/"+tpp.OrgID+".org.revoked.json")
		private = append(private, rel(tpp.TransportKey), rel(tpp.SigningKey), rel(tpp.SigningKeyEC))
	}
	check := func(rel string, want os.FileMode) {
		fi, err := os.Stat(filepath.Join(sb.Dir, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode().Perm(), want)
		}
	}
	for _, p := range public {
		check(p, 0o644)
	}
	for _, p := range private {
		check(p, 0o600)
	}
	if filepath.Dir(sb.TPPs[0].TransportCert) != filepath.Join(sb.Dir, "tpps", "1") {
		t.Errorf("TPP 1 dir = %s", sb.TPPs[0].Dir)
	}
	if sb.Files.JWKSDir != filepath.Join(sb.Dir, "jwks") || !filepath.IsAbs(sb.Files.CABundle) {
		t.Errorf("Files = %+v", sb.Files)
	}
}

func TestCertificatesChainToBundle(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, Options{Host: "gateway.test"})
	pool := bundlePool(t, sb)
	intermediates := func(chain []*x509.Certificate) *x509.CertPool {
		p := x509.NewCertPool()
		for _, c := range chain[1:] {
			p.AddCert(c)
		}
		return p
	}

	tpp := sb.TPPs[0]
	chain, err := ReadCertificates(tpp.TransportCert)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 {
		t.Fatalf("transport.pem holds %d certificates, want leaf + issuing", len(chain))
	}
	leaf := chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("transport cert with only the bundle: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: intermediates(chain), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("transport cert: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("transport cert must not verify for server auth")
	}
	wantDN := "CN=" + tpp.SoftwareID + ",OU=" + tpp.OrgID + ",O=OpenBanking,C=GB"
	if got := leaf.Subject.String(); got != wantDN || tpp.TransportSubjectDN != wantDN {
		t.Errorf("subject = %q (recorded %q), want %q", got, tpp.TransportSubjectDN, wantDN)
	}
	if leaf.Issuer.String() != sb.IssuingCA().Subject.String() {
		t.Errorf("issuer = %q", leaf.Issuer)
	}
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Errorf("validity = %v, want about a year", d)
	}

	server, err := ReadCertificates(sb.Files.ServerCert)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "gateway.test"} {
		if _, err := server[0].Verify(x509.VerifyOptions{DNSName: name, Roots: pool, Intermediates: intermediates(server)}); err != nil {
			t.Errorf("server cert for %s: %v", name, err)
		}
	}
	if _, err := ReadPrivateKey(sb.Files.ServerKey); err != nil {
		t.Error(err)
	}
	issuing, _ := ReadCertificates(sb.Files.IssuingCA)
	root, _ := ReadCertificates(sb.Files.RootCA)
	if !issuing[0].IsCA || !root[0].IsCA || issuing[0].Issuer.String() != root[0].Subject.String() {
		t.Error("issuing CA is not signed by the root")
	}
}

func TestSSAVerifiesWithDirectoryJWKS(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, Options{BaseURL: "https://gw.example:9443/"})
	tpp := sb.TPPs[0]
	ssa, err := tpp.SSA()
	if err != nil {
		t.Fatal(err)
	}
	set, err := sb.DirectoryJWKS()
	if err != nil {
		t.Fatal(err)
	}
	key, ok := set.Key(0)
	if !ok || key.KeyID() != sb.DirectoryKID || key.KeyUsage() != "sig" || key.Algorithm().String() != "PS256" {
		t.Fatalf("directory JWKS key = %v", key)
	}
	payload, err := jws.Verify([]byte(ssa), jws.WithKeySet(set))
	if err != nil {
		t.Fatalf("SSA does not verify with directory/jwks.json: %v", err)
	}
	msg, _ := jws.Parse([]byte(ssa))
	hdr := msg.Signatures()[0].ProtectedHeaders()
	if hdr.Algorithm().String() != "PS256" || hdr.KeyID() != sb.DirectoryKID || hdr.Type() != "JWT" {
		t.Errorf("SSA header alg=%s kid=%s typ=%s", hdr.Algorithm(), hdr.KeyID(), hdr.Type())
	}

	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"iss": "OpenBanking Ltd", "software_environment": "sandbox", "software_mode": "Test",
		"software_id": tpp.SoftwareID, "software_client_id": tpp.SoftwareID, "software_version": "1.0",
		"org_status": "Active", "org_id": tpp.OrgID, "org_name": tpp.OrgName, "software_on_behalf_of_org": "",
		"software_client_name":           tpp.ClientName,
		"software_jwks_endpoint":         "https://gw.example:9443/sandbox/jwks/" + tpp.SoftwareID + ".json",
		"software_jwks_revoked_endpoint": "https://gw.example:9443/sandbox/jwks/" + tpp.SoftwareID + ".revoked.json",
		"org_jwks_endpoint":              "https://gw.example:9443/sandbox/jwks/" + tpp.OrgID + ".org.json",
		"org_jwks_revoked_endpoint":      "https://gw.example:9443/sandbox/jwks/" + tpp.OrgID + ".org.revoked.json",
		"software_redirect_uris":         []any{"https://tpp1.example.com/callback", "https://tpp1.example.com/cb2"},
		"software_roles":                 []any{"AISP", "PISP", "CBPII"},
	}
	for k, v := range want {
		if !reflect.DeepEqual(claims[k], v) {
			t.Errorf("claim %s = %#v, want %#v", k, claims[k], v)
		}
	}
	for _, k := range []string{"iat", "jti", "software_client_description", "software_client_uri", "software_logo_uri", "org_contacts", "software_policy_uri", "software_tos_uri"} {
		if _, ok := claims[k]; !ok {
			t.Errorf("claim %s missing", k)
		}
	}
	if !orgIDShape.MatchString(tpp.OrgID) || !softwareIDShape.MatchString(tpp.SoftwareID) {
		t.Errorf("id shapes: org_id %q software_id %q", tpp.OrgID, tpp.SoftwareID)
	}
	if jti, _ := claims["jti"].(string); !uuidShape.MatchString(jti) {
		t.Errorf("jti = %q", claims["jti"])
	}
	if iat, _ := claims["iat"].(float64); time.Since(time.Unix(int64(iat), 0)) > time.Minute {
		t.Errorf("iat = %v", claims["iat"])
	}
}

func TestTPPJWKSHoldsSigningAndTransportKeys(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, Options{})
	tpp := sb.TPPs[0]
	b, err := os.ReadFile(tpp.JWKSFile)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{tpp.SigningKID: "PS256", tpp.SigningKIDEC: "ES256", tpp.TransportKID: ""}
	if set.Len() != len(want) {
		t.Fatalf("JWKS has %d keys, want %d", set.Len(), len(want))
	}
	for kid, alg := range want {
		k, ok := set.LookupKeyID(kid)
		if !ok {
			t.Errorf("kid %s missing", kid)
			continue
		}
		if k.Algorithm().String() != alg {
			t.Errorf("kid %s alg %q, want %q", kid, k.Algorithm(), alg)
		}
		if _, private := k.(interface{ D() []byte }); private {
			t.Errorf("kid %s: JWKS leaks a private key", kid)
		}
	}
	tlsKey, _ := set.LookupKeyID(tpp.TransportKID)
	if tlsKey.KeyUsage() != "tls" || tlsKey.X509CertChain() == nil || tlsKey.X509CertChain().Len() != 2 || tlsKey.X509CertThumbprintS256() == "" {
		t.Errorf("transport key entry = %v", tlsKey)
	}
	revoked, err := os.ReadFile(filepath.Join(sb.Files.JWKSDir, tpp.SoftwareID+".revoked.json"))
	if err != nil || string(revoked) != "{\n  \"keys\": []\n}\n" {
		t.Errorf("revoked set = %q, %v", revoked, err)
	}
	if orgSet, err := os.ReadFile(tpp.OrgJWKSFile); err != nil || string(orgSet) != string(b) {
		t.Errorf("org JWKS differs from software JWKS (err %v)", err)
	}
}

func TestLoadRoundTripsInit(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, Options{TPPs: 2, Host: "10.1.2.3", BaseURL: "https://gw:8443"})
	loaded, err := Load(sb.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(loaded.TPPs, sb.TPPs) {
		t.Errorf("TPPs differ:\n got  %+v\n want %+v", loaded.TPPs[0], sb.TPPs[0])
	}
	if loaded.Dir != sb.Dir || loaded.DirectoryKID != sb.DirectoryKID || loaded.DirectoryIssuer != sb.DirectoryIssuer ||
		loaded.Host != sb.Host || loaded.BaseURL != sb.BaseURL || loaded.Files != sb.Files {
		t.Errorf("loaded %+v\nwant %+v", loaded, sb)
	}
	// The loaded sandbox still signs SSAs that the directory JWKS verifies.
	ssa, err := loaded.SignSSA(loaded.SSAClaims(loaded.TPP(2)))
	if err != nil {
		t.Fatal(err)
	}
	set, _ := loaded.DirectoryJWKS()
	if _, err := jws.Verify([]byte(ssa), jws.WithKeySet(set)); err != nil {
		t.Error(err)
	}
	// tpp.json is portable: paths are relative to the sandbox directory.
	var onDisk map[string]any
	b, _ := os.ReadFile(filepath.Join(sb.TPPs[0].Dir, "tpp.json"))
	_ = json.Unmarshal(b, &onDisk)
	if onDisk["transport_cert"] != "tpps/1/transport.pem" || onDisk["jwks_file"] != "jwks/"+sb.TPPs[0].SoftwareID+".json" {
		t.Errorf("tpp.json paths: %v, %v", onDisk["transport_cert"], onDisk["jwks_file"])
	}
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(sb.Dir, moved); err != nil {
		t.Fatal(err)
	}
	m, err := Load(moved)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.TPPs[1].TransportKey); err != nil {
		t.Errorf("moved sandbox: %v", err)
	}
}

func TestInitRefusesExistingUnlessForce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keep := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(keep, []byte("# mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := newSandbox(t, Options{Dir: dir})
	if _, err := Init(Options{Dir: dir}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init without Force: %v, want ErrExists", err)
	}
	again, err := Load(dir)
	if err != nil || again.TPPs[0].SoftwareID != first.TPPs[0].SoftwareID {
		t.Fatalf("refused Init changed the sandbox: %v", err)
	}
	second, err := Init(Options{Dir: dir, Force: true, TPPs: 1})
	if err != nil {
		t.Fatal(err)
	}
	if second.TPPs[0].SoftwareID == first.TPPs[0].SoftwareID || second.DirectoryKID == first.DirectoryKID {
		t.Error("Force did not regenerate the sandbox")
	}
	if _, err := os.Stat(filepath.Join(dir, "jwks", first.TPPs[0].SoftwareID+".json")); !errors.Is(err, os.ErrNotExist) {
		t.Error("Force left the old TPP's JWKS behind")
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "# mine" {
		t.Error("Force removed a file that is not part of the sandbox")
	}
	// A partial sandbox (e.g. only ca/) also counts as existing.
	partial := t.TempDir()
	_ = os.MkdirAll(filepath.Join(partial, "ca"), 0o755)
	if _, err := Init(Options{Dir: partial}); !errors.Is(err, ErrExists) {
		t.Errorf("Init over a partial sandbox: %v", err)
	}
}

func TestNewTPPAfterLoad(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t, Options{})
	loaded, err := Load(sb.Dir)
	if err != nil {
		t.Fatal(err)
	}
	tpp, err := loaded.NewTPP()
	if err != nil {
		t.Fatal(err)
	}
	if tpp.Index != 2 || tpp.SoftwareID == sb.TPPs[0].SoftwareID || tpp.OrgID == sb.TPPs[0].OrgID {
		t.Errorf("new TPP = %+v", tpp)
	}
	chain, _ := ReadCertificates(tpp.TransportCert)
	pool := bundlePool(t, loaded)
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("TPP added after Load: %v", err)
	}
	if again, _ := Load(sb.Dir); len(again.TPPs) != 2 {
		t.Errorf("Load sees %d TPPs, want 2", len(again.TPPs))
	}
}

func TestIDShapes(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 200 {
		o, _ := NewOrgID()
		s, _ := NewSoftwareID()
		if !orgIDShape.MatchString(o) || !softwareIDShape.MatchString(s) {
			t.Fatalf("org_id %q software_id %q", o, s)
		}
		if seen[s] {
			t.Fatalf("duplicate software_id %q", s)
		}
		seen[s] = true
	}
}

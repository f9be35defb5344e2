package dcrcmd

import (
	"crypto"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/dcrgate/dcrgate/internal/sandbox"
)

func TestSandboxInitWritesCRLAndDistributionPoint(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sb")
	run(t, "sandbox", "init", "--dir", dir, "--tpps", "2", "--base-url", "https://gw.example:9443", "--ocsp-url", "http://ocsp.example/r").want(t, ExitOK)
	sb, err := sandbox.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	list, err := sb.ReadCRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := list.CheckSignatureFrom(sb.IssuingCA()); err != nil || len(list.RevokedCertificateEntries) != 0 {
		t.Fatalf("initial CRL: %v, %d entries; want empty and signed by the issuing CA", err, len(list.RevokedCertificateEntries))
	}
	certs, err := sandbox.ReadCertificates(sb.TPP(2).TransportCert)
	if err != nil {
		t.Fatal(err)
	}
	if got := certs[0].CRLDistributionPoints; len(got) != 1 || got[0] != "https://gw.example:9443/sandbox/crl/issuing.crl" {
		t.Fatalf("CRL distribution points %v", got)
	}
	if got := certs[0].OCSPServer; len(got) != 1 || got[0] != "http://ocsp.example/r" {
		t.Fatalf("OCSP servers %v", got)
	}
	// add-tpp keeps the OCSP URL of the manifest.
	run(t, "sandbox", "add-tpp", "--dir", dir).want(t, ExitOK)
	sb, _ = sandbox.Load(dir)
	certs, _ = sandbox.ReadCertificates(sb.TPP(3).TransportCert)
	if got := certs[0].OCSPServer; len(got) != 1 || got[0] != "http://ocsp.example/r" {
		t.Fatalf("added TPP: OCSP servers %v", got)
	}
}

func TestSandboxRevokeTransportCert(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sb")
	run(t, "sandbox", "init", "--dir", dir, "--tpps", "2").want(t, ExitOK)
	r := run(t, "sandbox", "revoke", "--dir", dir, "--tpp", "2", "--transport-cert", "--reason", "superseded").want(t, ExitOK)
	sb, err := sandbox.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.stdout, sb.TPP(2).TransportSerial) || !strings.Contains(r.stdout, "revoked (superseded)") {
		t.Errorf("output:\n%s", r.stdout)
	}
	list, err := sb.ReadCRL()
	if err != nil {
		t.Fatal(err)
	}
	certs, _ := sandbox.ReadCertificates(sb.TPP(2).TransportCert)
	if err := list.CheckSignatureFrom(sb.IssuingCA()); err != nil {
		t.Fatal(err)
	}
	if len(list.RevokedCertificateEntries) != 1 || list.RevokedCertificateEntries[0].SerialNumber.Cmp(certs[0].SerialNumber) != 0 ||
		list.RevokedCertificateEntries[0].ReasonCode != 4 || list.Number.Int64() != 2 {
		t.Fatalf("CRL #%v entries %+v, want TPP 2's serial with reason 4 in CRL 2", list.Number, list.RevokedCertificateEntries)
	}

	// Again: nothing changes, and it succeeds.
	before, _ := os.ReadFile(sb.Files.IssuingCRL)
	r = run(t, "sandbox", "revoke", "--dir", dir, "--tpp", "2", "--transport-cert").want(t, ExitOK)
	after, _ := os.ReadFile(sb.Files.IssuingCRL)
	if string(before) != string(after) || !strings.Contains(r.stdout, "already revoked") {
		t.Fatalf("second revoke changed the CRL or did not say so:\n%s", r.stdout)
	}
	// TPP 1 next: both entries.
	run(t, "sandbox", "revoke", "--dir", dir, "--tpp", "1", "--transport-cert").want(t, ExitOK)
	if list, _ = sb.ReadCRL(); len(list.RevokedCertificateEntries) != 2 || list.Number.Int64() != 3 {
		t.Fatalf("after TPP 1: CRL #%v with %d entries", list.Number, len(list.RevokedCertificateEntries))
	}
}

func TestSandboxRevokeSigningKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sb")
	run(t, "sandbox", "init", "--dir", dir).want(t, ExitOK)
	sb, _ := sandbox.Load(dir)
	tpp := sb.TPP(1)
	run(t, "sandbox", "revoke", "--dir", dir, "--tpp", "1", "--signing-key").want(t, ExitOK)
	run(t, "sandbox", "revoke", "--dir", dir, "--tpp", "1", "--signing-key", "--kid", tpp.SigningKIDEC).want(t, ExitOK)
	run(t, "sandbox", "revoke", "--dir", dir, "--tpp", "1", "--signing-key").want(t, ExitOK) // idempotent

	active := readSet(t, tpp.JWKSFile)
	sw, org := tpp.RevokedJWKSFiles()
	for _, f := range []string{sw, org} {
		set := readSet(t, f)
		if set.Len() != 2 {
			t.Fatalf("%s holds %d keys, want the 2 signing keys", f, set.Len())
		}
		for _, kid := range []string{tpp.SigningKID, tpp.SigningKIDEC} {
			k, ok := set.LookupKeyID(kid)
			a, _ := active.LookupKeyID(kid)
			if !ok || a == nil {
				t.Fatalf("%s: kid %s missing (or gone from the active set)", f, kid)
			}
			tk, _ := k.Thumbprint(crypto.SHA256)
			ta, _ := a.Thumbprint(crypto.SHA256)
			if string(tk) != string(ta) || k.KeyUsage() != "sig" {
				t.Fatalf("%s: kid %s is not the published key", f, kid)
			}
			if _, err := k.PublicKey(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !strings.HasSuffix(tpp.JWKSRevokedURL, "/sandbox/jwks/"+filepath.Base(sw)) || !strings.HasSuffix(tpp.OrgJWKSRevokedURL, "/sandbox/jwks/"+filepath.Base(org)) {
		t.Fatalf("the revoked sets %s, %s are not what the SSA's endpoints %s, %s serve", sw, org, tpp.JWKSRevokedURL, tpp.OrgJWKSRevokedURL)
	}

	// The transport key is not a signing key.
	r := run(t, "sandbox", "revoke", "--dir", dir, "--tpp", "1", "--signing-key", "--kid", tpp.TransportKID).want(t, ExitRejected)
	if !strings.Contains(r.stderr, "not a signing key") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

func TestSandboxRevokeUsage(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "sb")
	run(t, "sandbox", "init", "--dir", dir).want(t, ExitOK)
	for _, args := range [][]string{
		{"--dir", dir, "--tpp", "1"},
		{"--tpp", "1", "--transport-cert"},
		{"--dir", dir, "--transport-cert"},
		{"--dir", dir, "--tpp", "1", "--transport-cert", "--kid", "x"},
		{"--dir", dir, "--tpp", "1", "--transport-cert", "--reason", "bored"},
	} {
		run(t, append([]string{"sandbox", "revoke"}, args...)...).want(t, ExitUsage)
	}
	r := run(t, "sandbox", "revoke", "--dir", dir, "--tpp", "7", "--transport-cert").want(t, ExitRejected)
	if !strings.Contains(r.stderr, "no TPP 7") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

func readSet(t *testing.T, path string) jwk.Set {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

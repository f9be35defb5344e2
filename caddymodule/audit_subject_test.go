package caddymodule

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
)

// TestSubjectCache: the cached DN is pkix.Name.String's for each certificate, also after the
// cache filled up and started again, and a certificate built in memory (no RawSubject) is
// formatted from its Subject.
func TestSubjectCache(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	parsed := func(name pkix.Name) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: name}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	c := &subjectCache{max: 2}
	certs := []*x509.Certificate{
		parsed(pkix.Name{CommonName: "tpp-1", Organization: []string{"Org One"}, OrganizationalUnit: []string{"0015800001041REAAY"}}),
		parsed(pkix.Name{CommonName: "tpp-2", Country: []string{"GB"}}),
		parsed(pkix.Name{CommonName: "tpp-3, with a comma"}),
	}
	for round := range 3 {
		for i, cert := range certs {
			if got, want := c.of(cert), cert.Subject.String(); got != want {
				t.Fatalf("round %d, cert %d: %q, want %q", round, i, got, want)
			}
			if n := len(*c.m.Load()); n > c.max {
				t.Fatalf("round %d: %d subjects cached, more than the bound %d", round, n, c.max)
			}
		}
	}
	inMemory := &x509.Certificate{Subject: pkix.Name{CommonName: "built"}}
	if got := c.of(inMemory); got != "CN=built" {
		t.Fatalf("in-memory certificate: %q", got)
	}
	inMemory.Subject.CommonName = "changed"
	if got := c.of(inMemory); got != "CN=changed" {
		t.Fatalf("in-memory certificate, changed: %q", got)
	}
}

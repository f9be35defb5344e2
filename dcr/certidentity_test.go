package dcr

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
)

func TestCertificateIdentity(t *testing.T) {
	ob := &x509.Certificate{Subject: pkix.Name{Country: []string{"GB"}, Organization: []string{"OpenBanking"},
		OrganizationalUnit: []string{"0015800001HQQrZAAX"}, CommonName: "2kiXQyo0tedjW2somjSgH7"}}
	if o, s := CertificateIdentity(ob); o != "0015800001HQQrZAAX" || s != "2kiXQyo0tedjW2somjSgH7" {
		t.Fatalf("OB cert: got %q %q", o, s)
	}
	eidas := &x509.Certificate{Subject: pkix.Name{CommonName: "sw1", Names: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{2, 5, 4, 97}, Value: "PSDGB-OB-0015800001ABCDEFGH"}}}}
	if o, s := CertificateIdentity(eidas); o != "0015800001ABCDEFGH" || s != "sw1" {
		t.Fatalf("eIDAS cert: got %q %q", o, s)
	}
	if o, s := CertificateIdentity(nil); o != "" || s != "" {
		t.Fatal("nil cert must have no identity")
	}
	if o, _ := CertificateIdentity(&x509.Certificate{Subject: pkix.Name{CommonName: "x"}}); o != "" {
		t.Fatalf("cert without OU or organizationIdentifier: got org %q", o)
	}
}

func TestCertificateThumbprint(t *testing.T) {
	// RFC 8705 §3.1: base64url of the SHA-256 of the DER bytes; SHA-256("abc") is
	// ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.
	cert := &x509.Certificate{Raw: []byte("abc")}
	if got, want := CertificateThumbprint(cert), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"; got != want {
		t.Fatalf("CertificateThumbprint = %q, want %q", got, want)
	}
}

func TestOrganizationIdentifier(t *testing.T) {
	tests := []struct {
		name  string
		names []pkix.AttributeTypeAndValue
		want  string
	}{
		{"none", nil, ""},
		{"one", []pkix.AttributeTypeAndValue{{Type: OIDOrganizationIdentifier, Value: "PSDGB-OB-0015800001ABCDEFGH"}}, "PSDGB-OB-0015800001ABCDEFGH"},
		{"the first of two", []pkix.AttributeTypeAndValue{{Type: OIDOrganizationIdentifier, Value: "PSDGB-OB-a"}, {Type: OIDOrganizationIdentifier, Value: "PSDGB-OB-b"}}, "PSDGB-OB-a"},
		{"a value that is not a string is skipped", []pkix.AttributeTypeAndValue{{Type: OIDOrganizationIdentifier, Value: 5}, {Type: OIDOrganizationIdentifier, Value: "x"}}, "x"},
		{"other attributes are not it", []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "cn"}}, ""},
	}
	for _, tc := range tests {
		if got := OrganizationIdentifier(&x509.Certificate{Subject: pkix.Name{Names: tc.names}}); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

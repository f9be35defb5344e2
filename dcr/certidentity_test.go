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

package dn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

const orgID = "PSDGB-OB-Unknown0015800001HQQrZAAX"

// newCert makes a self-signed certificate with the given subject, parsed back so that its
// Subject is what crypto/x509 reads from the wire.
func newCert(t testing.TB, subject pkix.Name) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func obSubject() pkix.Name {
	return pkix.Name{
		Country:            []string{"GB"},
		Organization:       []string{"OpenBanking"},
		OrganizationalUnit: []string{"0015800001HQQrZAAX"},
		CommonName:         "5GEvbfQmJxKDpQm0dw1yEw",
		ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: dcr.OIDOrganizationIdentifier, Value: orgID},
		},
	}
}

func TestMatchCertificate(t *testing.T) {
	cert := newCert(t, obSubject())
	goString := cert.Subject.String()
	if !strings.Contains(goString, "2.5.4.97=#") {
		t.Fatalf("expected Go to print organizationIdentifier as a hex string, got %q", goString)
	}
	tests := []struct {
		name string
		dn   string
		want bool
	}{
		{"Go pkix.Name.String", goString, true},
		{"RFC 4514 with names", "organizationIdentifier=" + orgID + ",CN=5GEvbfQmJxKDpQm0dw1yEw,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB", true},
		{"OpenSSL slash form", "/C=GB/O=OpenBanking/OU=0015800001HQQrZAAX/CN=5GEvbfQmJxKDpQm0dw1yEw/organizationIdentifier=" + orgID, true},
		{"reversed order", "C=GB,O=OpenBanking,OU=0015800001HQQrZAAX,CN=5GEvbfQmJxKDpQm0dw1yEw,organizationIdentifier=" + orgID, true},
		{"shuffled order", "OU=0015800001HQQrZAAX,organizationIdentifier=" + orgID + ",C=GB,CN=5GEvbfQmJxKDpQm0dw1yEw,O=OpenBanking", true},
		{"OID aliases", "2.5.4.6=GB,2.5.4.10=OpenBanking,2.5.4.11=0015800001HQQrZAAX,OID.2.5.4.3=5GEvbfQmJxKDpQm0dw1yEw,2.5.4.97=" + orgID, true},
		{"long names", "countryName=GB,organizationName=OpenBanking,organizationalUnitName=0015800001HQQrZAAX,commonName=5GEvbfQmJxKDpQm0dw1yEw,ORGANIZATIONIDENTIFIER=" + orgID, true},
		{"case differences", "c=gb,o=OPENBANKING,ou=0015800001hqqrzaax,cn=5gevbfqmjxkdpqm0dw1yew,organizationidentifier=psdgb-ob-unknown0015800001hqqrzaax", true},
		{"OpenSSL one-line spacing", "C = GB, O = OpenBanking, OU = 0015800001HQQrZAAX, CN = 5GEvbfQmJxKDpQm0dw1yEw, organizationIdentifier = " + orgID, true},
		{"space inserted inside a value", "/C=GB/O=Open   Banking/OU=0015800001HQQrZAAX/CN=5GEvbfQmJxKDpQm0dw1yEw/organizationIdentifier=" + orgID, false},
		{"multi-valued RDN", "C=GB+O=OpenBanking,OU=0015800001HQQrZAAX+CN=5GEvbfQmJxKDpQm0dw1yEw+organizationIdentifier=" + orgID, true},
		{"different OU", "/C=GB/O=OpenBanking/OU=0015800001HQQrZAAY/CN=5GEvbfQmJxKDpQm0dw1yEw/organizationIdentifier=" + orgID, false},
		{"missing attribute", "/C=GB/O=OpenBanking/OU=0015800001HQQrZAAX/CN=5GEvbfQmJxKDpQm0dw1yEw", false},
		{"extra attribute", "/C=GB/O=OpenBanking/OU=0015800001HQQrZAAX/CN=5GEvbfQmJxKDpQm0dw1yEw/organizationIdentifier=" + orgID + "/L=London", false},
		{"duplicated attribute", "/C=GB/C=GB/O=OpenBanking/OU=0015800001HQQrZAAX/CN=5GEvbfQmJxKDpQm0dw1yEw", false},
		{"type moved to another value", "/C=GB/OU=OpenBanking/O=0015800001HQQrZAAX/CN=5GEvbfQmJxKDpQm0dw1yEw/organizationIdentifier=" + orgID, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := MatchCertificate(tc.dn, cert)
			if err != nil {
				t.Fatalf("MatchCertificate(%q): %v", tc.dn, err)
			}
			if got != tc.want {
				t.Errorf("MatchCertificate(%q) = %v, want %v (cert %s)", tc.dn, got, tc.want, FromCertificate(cert))
			}
		})
	}
}

func TestMatchCertificateSpecialValues(t *testing.T) {
	cert := newCert(t, pkix.Name{
		Country:      []string{"GB"},
		Organization: []string{`Acme, Ltd + "Sons" <UK>; a\b`},
		CommonName:   " spaced ",
		ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "Ops@Example.COM"},
			{Type: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: "Zürich"},
		},
	})
	for _, s := range []string{
		cert.Subject.String(),
		FromCertificate(cert).String(),
		`CN=spaced,O=Acme\, Ltd \+ \"Sons\" \<UK\>\; a\\b,C=GB,emailAddress=ops@example.com,1.3.6.1.4.1.99999.1=Z\C3\BCrich`,
		`/C=GB/O=Acme, Ltd \+ "Sons" <UK>; a\\b/CN=\ spaced\ /E=ops@example.com/1.3.6.1.4.1.99999.1=ZÜRICH`,
	} {
		ok, err := MatchCertificate(s, cert)
		if err != nil || !ok {
			t.Errorf("MatchCertificate(%q) = %v, %v; want true", s, ok, err)
		}
	}
}

func TestMatchCertificateErrors(t *testing.T) {
	if _, err := MatchCertificate("CN=x", nil); err == nil {
		t.Error("nil certificate: want an error")
	}
	cert := newCert(t, obSubject())
	if _, err := MatchCertificate("CN", cert); err == nil {
		t.Error("malformed DN: want an error")
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Name
	}{
		{"CN=a,O=b,C=GB", Name{{"C", "GB"}, {"O", "b"}, {"CN", "a"}}},
		{"/C=GB/O=b/CN=a", Name{{"C", "GB"}, {"O", "b"}, {"CN", "a"}}},
		{`CN=Smith\, John,O=x`, Name{{"O", "x"}, {"CN", "Smith, John"}}},
		{`CN=a\2Cb`, Name{{"CN", "a,b"}}},
		{`CN=\C3\A9t\C3\A9`, Name{{"CN", "été"}}},
		{`CN=\#1\=\;\<\>\"\\\+\,\ `, Name{{"CN", `#1=;<>"\+, `}}},
		{`CN=a=b`, Name{{"CN", "a=b"}}},
		{"CN=#0c03616263", Name{{"CN", "abc"}}},          // UTF8String
		{"CN=#1303616263", Name{{"CN", "abc"}}},          // PrintableString
		{"CN=#1603616263", Name{{"CN", "abc"}}},          // IA5String
		{"CN=#1403e97465", Name{{"CN", "éte"}}},          // T61String as Latin-1
		{"CN=#1e0400e90074", Name{{"CN", "ét"}}},         // BMPString
		{"CN=#1c08000000e900000074", Name{{"CN", "ét"}}}, // UniversalString
		{"CN=#0C03616263 , O=x", Name{{"O", "x"}, {"CN", "abc"}}},
		{"CN=a+UID=b,DC=example", Name{{"DC", "example"}, {"CN", "a"}, {"UID", "b"}}},
		{"/C=GB/O=a,b;c/CN=x\\/y", Name{{"C", "GB"}, {"O", "a,b;c"}, {"CN", "x/y"}}},
		{"/CN=a\\x2Cb/OU=#1", Name{{"CN", "a,b"}, {"OU", "#1"}}},
		{"  /C = GB / CN = a b  ", Name{{"C", "GB"}, {"CN", "a b"}}},
		{"CN=", Name{{"CN", ""}}},
		{"1.2.3.4=x,E=a@b,SN=Doe,serialNumber=1", Name{{"SERIALNUMBER", "1"}, {"SN", "Doe"}, {"emailAddress", "a@b"}, {"1.2.3.4", "x"}}},
		{"jurisdictionCountryName=GB,2.5.4.15=Private Organization", Name{{"businessCategory", "Private Organization"}, {"jurisdictionC", "GB"}}},
	}
	for _, tc := range tests {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("Parse(%q) = %#v, want %#v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("Parse(%q) = %#v, want %#v", tc.in, got, tc.want)
				break
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	tooMany := strings.Repeat("CN=a,", MaxAttributes) + "CN=a"
	tests := []struct {
		in      string
		wantErr string
	}{
		{"", "empty"},
		{"   ", "empty"},
		{"/", "empty RDN"},
		{"CN", "has no '='"},
		{"CN=a,O", "has no '='"},
		{"/C=GB/O", "has no '='"},
		{"=a", "empty attribute type"},
		{"CN=a,=b", "empty attribute type"},
		{"CN=a,,O=b", "empty RDN"},
		{"CN=a,", "trailing ','"},
		{"CN=a+", "trailing '+'"},
		{"/C=GB/", "trailing '/'"},
		{"foo=a", "unknown attribute type"},
		{"C N=a", "not a keyword or dotted OID"},
		{"2.5.04.3=a", "not a valid dotted OID"},
		{"2=a", "not a valid dotted OID"},
		{"OID.=a", "not a keyword or dotted OID"},
		{`CN=a\`, "dangling"},
		{`CN=a\q`, "bad escape"},
		{`CN=a\4`, "bad escape"},
		{`CN=a\G1`, "bad escape"},
		{`CN=\FF`, "not valid UTF-8"},
		{`/CN=a\qb`, "bad escape"},
		{`CN="a"`, "must be escaped"},
		{`CN=a;O=b`, "must be escaped"},
		{`CN=<a>`, "must be escaped"},
		{"CN=a\x00b", "NUL"},
		{"CN=#", "even, non-zero"},
		{"CN=#0c0", "even, non-zero"},
		{"CN=#0c0G", "bad hex"},
		{"CN=#0c03616263 x", "unexpected"},
		{"CN=#0c0361626364", "trailing data"},
		{"CN=#0c046162", "not a valid ASN.1"},
		{"CN=#020101", "unsupported ASN.1 type"},
		{"CN=#3000", "not a string"},
		{"CN=#0c01ff", "not valid UTF-8"},
		{"CN=#1301ff", "non-ASCII"},
		{"CN=#1e0100", "odd number"},
		{"CN=#1c03000000", "multiple of 4"},
		{"CN=#1e02d800", "invalid character"},
		{"CN=\xff", "not valid UTF-8"},
		{tooMany, "more than 64 attributes"},
		{"CN=" + strings.Repeat("a", MaxInputLength), "longer than"},
	}
	for _, tc := range tests {
		_, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q): no error, want one containing %q", tc.in, tc.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Parse(%q) error %q does not contain %q", tc.in, err, tc.wantErr)
		}
	}
	// The limit is on attributes, not RDNs: exactly MaxAttributes is fine.
	if _, err := Parse(strings.Repeat("CN=a,", MaxAttributes-1) + "CN=a"); err != nil {
		t.Errorf("%d attributes: %v", MaxAttributes, err)
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b Name
		want bool
	}{
		{nil, nil, true},
		{Name{{"CN", "a"}}, nil, false},
		{Name{{"CN", " A  b "}}, Name{{"cn", "a b"}}, true},
		{Name{{"CN", "a\tb"}}, Name{{"2.5.4.3", "A B"}}, true},
		{Name{{"CN", "ÉTÉ"}}, Name{{"CN", "été"}}, true},
		{Name{{"CN", "ſ"}}, Name{{"CN", "S"}}, true}, // long s folds to s
		{Name{{"CN", "a"}, {"CN", "a"}}, Name{{"CN", "a"}, {"O", "a"}}, false},
		{Name{{"CN", "a"}, {"O", "b"}}, Name{{"O", "b"}, {"CN", "a"}}, true},
		{Name{{"CN", "ab"}}, Name{{"CN", "a b"}}, false},
	}
	for _, tc := range tests {
		if got := Equal(tc.a, tc.b); got != tc.want {
			t.Errorf("Equal(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestString(t *testing.T) {
	n := Name{{"C", "GB"}, {"O", "Acme, Ltd"}, {"CN", " #x "}, {"2.5.4.97", "PSD\x01"}, {"OU", "a\xffb"}}
	want := `OU=a\FFb,organizationIdentifier=PSD\01,CN=\ #x\ ,O=Acme\, Ltd,C=GB`
	if got := n.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	back, err := Parse(n[:4].String())
	if err != nil || !Equal(back, n[:4]) {
		t.Errorf("Parse(String()) = %v, %v; want %v", back, err, n[:4])
	}
}

func TestFromPKIX(t *testing.T) {
	// A hand-built name (no Names) is read from its fields and ExtraNames.
	n := FromPKIX(obSubject())
	cert := newCert(t, obSubject())
	if !Equal(n, FromCertificate(cert)) {
		t.Errorf("FromPKIX(template) = %v, FromCertificate = %v", n, FromCertificate(cert))
	}
	// Non-string values are formatted rather than dropped.
	n = FromPKIX(pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 3}, Value: 42}}})
	if len(n) != 1 || n[0] != (Attribute{"1.2.3", "42"}) {
		t.Errorf("FromPKIX(int value) = %#v", n)
	}
	if FromCertificate(nil) != nil {
		t.Error("FromCertificate(nil) should be nil")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"CN=a,O=b,C=GB",
		"/C=GB/O=OpenBanking/OU=x/CN=y",
		"C = GB, O = X",
		`CN=a\,b\2C\ \#+UID=c`,
		"2.5.4.97=#13045053442d,CN=x",
		"/CN=a\\x2F\\/b",
		"CN=#1e0400e90074",
		"CN=",
		"OID.1.2.3=x;y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		out := n.String()
		back, err := Parse(out)
		if err != nil {
			// String may exceed the input limit when it escapes a lot; that is not a bug.
			if len(out) > MaxInputLength {
				return
			}
			t.Fatalf("Parse(%q) ok, but Parse(String()=%q): %v", s, out, err)
		}
		if !Equal(n, back) {
			t.Fatalf("round trip of %q: %v != %v", s, n, back)
		}
		if back.String() != out {
			t.Fatalf("String not stable: %q then %q", out, back.String())
		}
	})
}

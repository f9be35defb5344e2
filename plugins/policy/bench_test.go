package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"math/big"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
)

// BenchmarkDefaultPolicy measures the embedded default set deciding one registration with the
// input of a real OB registration (a TLS client certificate, the request's and the SSA's
// claims as the pipeline verified them, the metadata the OB profile made):
//
//   - Protect: what the decide phase costs a registration: the input built from the exchange,
//     the store count (a fake here), the conversion to an OPA value, the evaluation, the
//     decision and its log (to a discarding logger);
//
//   - Eval: the conversion and the prepared query, as Protect runs them;
//
//   - EvalJSONRoundTrip: the same query given the Go input through rego.EvalInput, which
//     round-trips it through JSON: the previous way, kept as the ratio's baseline.
//
//     go test -run '^$' -bench DefaultPolicy -benchmem ./plugins/policy
func BenchmarkDefaultPolicy(b *testing.B) {
	p, _ := newPolicy(b, &Policy{})
	p.logger = zap.NewNop()
	x := realisticExchange(b)
	b.Run("Protect", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for range b.N {
			if _, err := p.Protect(context.Background(), x.Exchange, dcr.ReadOnly(x.Store)); err != nil {
				b.Fatal(err)
			}
		}
	})
	input := Input(x.Exchange, 3)
	b.Run("Eval", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for range b.N {
			d, err := p.engine.Decide(context.Background(), input)
			if err != nil || !d.Allow {
				b.Fatalf("%+v %v", d, err)
			}
		}
	})
	// EvalTopdown is Eval with the plan set aside: OPA's topdown, measured in the same run.
	b.Run("EvalTopdown", func(b *testing.B) {
		plan := p.engine.plan
		p.engine.plan = nil
		defer func() { p.engine.plan = plan }()
		b.ReportAllocs()
		defer reportCPU(b)()
		for range b.N {
			d, err := p.engine.Decide(context.Background(), input)
			if err != nil || !d.Allow {
				b.Fatalf("%+v %v", d, err)
			}
		}
	})
	b.Run("EvalJSONRoundTrip", func(b *testing.B) {
		b.ReportAllocs()
		defer reportCPU(b)()
		for range b.N {
			rs, err := p.engine.query.Eval(context.Background(), rego.EvalInput(input))
			if err != nil || len(rs) != 1 {
				b.Fatalf("%v %v", rs, err)
			}
			if d, err := ParseDecision(rs[0].Expressions[0].Value); err != nil || !d.Allow {
				b.Fatalf("%+v %v", d, err)
			}
		}
	})
}

// reportCPU starts measuring the process's CPU time; the returned func reports it per
// operation as cpu-ns/op.
func reportCPU(b *testing.B) func() {
	start := cpuTime(b)
	return func() { b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op") }
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// realisticExchange is a registration as the decide phase sees it: TPP 1 of an OB-like
// directory with an eIDAS-style transport certificate, a PS256 request of the OB DCR v3.2
// claims and the SSA's claims.
func realisticExchange(b testing.TB) *call {
	b.Helper()
	x := exchange(nil)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	orgIdentifier := asn1.ObjectIdentifier{2, 5, 4, 97}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(424242),
		Subject: pkix.Name{
			Country: []string{"GB"}, Organization: []string{"OpenBanking"},
			OrganizationalUnit: []string{testOrgID}, CommonName: testSoftwareID,
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: orgIdentifier, Value: "PSDGB-OB-" + testOrgID}},
		},
		NotBefore: time.Unix(1_690_000_000, 0), NotAfter: time.Unix(1_790_000_000, 0),
		DNSNames: []string{"tpp.example"},
		URIs:     []*url.URL{{Scheme: "https", Host: "tpp.example", Path: "/software/" + testSoftwareID}},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	if x.ClientCert, err = x509.ParseCertificate(der); err != nil {
		b.Fatal(err)
	}
	x.Request.RemoteAddr = "203.0.113.7:50412"
	x.Request.Header.Set("User-Agent", "tpp-client/1.0")
	x.Request.Header.Set("X-Forwarded-For", "203.0.113.7")
	redirects := []any{"https://tpp.example/callback", "https://tpp.example/cb2"}
	x.RequestClaims = map[string]any{
		"iss": testSoftwareID, "aud": "0015800001041REAAY", "iat": json.Number("1700000000"),
		"exp": json.Number("1700000300"), "jti": "0f0c0e9e-8f4b-4a56-9c8d-2b0f4e5e6d7c",
		"redirect_uris":                redirects,
		"token_endpoint_auth_method":   "tls_client_auth",
		"tls_client_auth_subject_dn":   x.ClientCert.Subject.String(),
		"grant_types":                  []any{"authorization_code", "client_credentials", "refresh_token"},
		"response_types":               []any{"code id_token"},
		"scope":                        "openid accounts payments",
		"application_type":             "web",
		"id_token_signed_response_alg": "PS256",
		"request_object_signing_alg":   "PS256",
		"software_id":                  testSoftwareID,
		"software_statement":           testSSA,
	}
	x.SoftwareStatement.Claims = map[string]any{
		"iss": "OpenBanking Ltd", "iat": json.Number("1699990000"), "jti": "ssa-jti-1",
		"software_environment": "sandbox", "software_mode": "Test",
		"software_id": testSoftwareID, "software_client_id": testSoftwareID,
		"software_client_name": "TPP One", "software_client_description": "An example TPP",
		"software_version": json.Number("1.1"), "software_client_uri": "https://tpp.example",
		"software_redirect_uris": redirects, "software_roles": []any{"AISP", "PISP", "CBPII"},
		"organisation_competent_authority_claims": map[string]any{
			"authority_id": "FCAGBR", "registration_id": "123456", "status": "Active",
			"authorisations": []any{map[string]any{"member_state": "GB", "roles": []any{"AISP", "PISP"}}},
		},
		"software_logo_uri": "https://tpp.example/logo.png", "org_status": "Active",
		"org_id": testOrgID, "org_name": "TPP One Ltd",
		"org_contacts":              []any{map[string]any{"name": "ops", "email": "ops@tpp.example", "phone": "+440000000000", "type": "Business"}},
		"org_jwks_endpoint":         "https://tpp.example/org.jwks",
		"software_jwks_endpoint":    "https://tpp.example/software.jwks",
		"software_policy_uri":       "https://tpp.example/policy",
		"software_tos_uri":          "https://tpp.example/tos",
		"software_on_behalf_of_org": "",
	}
	x.Metadata = map[string]any{
		"redirect_uris":                redirects,
		"token_endpoint_auth_method":   "tls_client_auth",
		"tls_client_auth_subject_dn":   x.ClientCert.Subject.String(),
		"grant_types":                  []any{"authorization_code", "client_credentials", "refresh_token"},
		"response_types":               []any{"code id_token"},
		"scope":                        "openid accounts payments",
		"application_type":             "web",
		"id_token_signed_response_alg": "PS256",
		"request_object_signing_alg":   "PS256",
		"software_id":                  testSoftwareID,
	}
	x.Store = &fakeStore{ids: []string{"c1", "c2", "c3"}}
	return x
}

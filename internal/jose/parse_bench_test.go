package jose

import (
	"context"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
)

// BenchmarkParseVerify decodes and verifies a token shaped like a registration request: a
// payload of about 30 claims, one of them a software statement of 2 KB.
//
//	go test -run '^$' -bench ParseVerify -benchmem ./internal/jose/
func BenchmarkParseVerify(b *testing.B) {
	src := defaultSource(b)
	claims := baseClaims()
	claims["software_statement"] = strings.Repeat("eyJhbGciOiJQUzI1NiJ9", 100)
	claims["redirect_uris"] = []string{"https://tpp.example/cb", "https://tpp.example/cb2"}
	claims["grant_types"] = []string{"authorization_code", "client_credentials", "refresh_token"}
	for _, k := range []string{"token_endpoint_auth_method", "tls_client_auth_subject_dn", "id_token_signed_response_alg",
		"request_object_signing_alg", "application_type", "scope", "software_id", "jti"} {
		claims[k] = k + "-value"
	}
	tok := sign(b, jwa.PS256, rsaKey, map[string]any{"kid": "rsa1", "typ": "JWT"}, claims)
	b.Run("Parse", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := Parse(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, _, err := Verify(context.Background(), tok, defaultAlgs, src); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package conformance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// The signer is this package's own; a JOSE library must accept what it signs.
func TestSignJWSVerifiesWithALibrary(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alg jwa.SignatureAlgorithm
		key crypto.Signer
	}{{jwa.PS256, rsaKey}, {jwa.RS256, rsaKey}, {jwa.ES256, ecKey}} {
		t.Run(tc.alg.String(), func(t *testing.T) {
			token, err := SignJWS(tc.alg.String(), "kid-1", tc.key, map[string]any{"iss": "x", "n": 1})
			if err != nil {
				t.Fatal(err)
			}
			payload, err := jws.Verify([]byte(token), jws.WithKey(tc.alg, tc.key.Public()))
			if err != nil {
				t.Fatalf("%s does not verify: %v", tc.alg, err)
			}
			var claims map[string]any
			if err := json.Unmarshal(payload, &claims); err != nil || claims["iss"] != "x" {
				t.Errorf("payload %s", payload)
			}
			msg, err := jws.Parse([]byte(token))
			if err != nil {
				t.Fatal(err)
			}
			h := msg.Signatures()[0].ProtectedHeaders()
			if h.KeyID() != "kid-1" || h.Algorithm() != tc.alg {
				t.Errorf("header kid %q alg %q", h.KeyID(), h.Algorithm())
			}
		})
	}
	if _, err := SignJWS("ES256", "k", rsaKey, nil); err == nil {
		t.Error("ES256 with an RSA key was signed")
	}
	if _, err := SignJWS("HS256", "k", rsaKey, nil); err == nil {
		t.Error("HS256 was signed")
	}
}

func TestDiscoveryPicksAsTheTool(t *testing.T) {
	var d Discovery
	if got := d.RequestObjectSigningAlg(); got != "none" {
		t.Errorf("request_object_signing_alg without the list = %q, want none (the tool's)", got)
	}
	d.RequestObjectSigningAlgValuesSupported = []string{"ES256", "PS256"}
	if got := d.RequestObjectSigningAlg(); got != "ES256" {
		t.Errorf("request_object_signing_alg = %q, want the first advertised", got)
	}
	if rt, err := d.ResponseTypes(); err != nil || rt != nil {
		t.Errorf("response_types without the list = %v %v, want left out", rt, err)
	}
	d.ResponseTypesSupported = []string{"code id_token", "id_token", "code"}
	if rt, err := d.ResponseTypes(); err != nil || len(rt) != 2 || rt[0] != "code id_token" || rt[1] != "code" {
		t.Errorf("response_types = %v %v", rt, err)
	}
	d.ResponseTypesSupported = []string{"id_token"}
	if _, err := d.ResponseTypes(); err == nil {
		t.Error("response_types_supported without code accepted")
	}
	for _, bad := range []string{"", "http://as.example.com/register", "/register"} {
		d.RegistrationEndpoint = bad
		if d.CheckRegistrationEndpoint() == nil {
			t.Errorf("registration_endpoint %q accepted", bad)
		}
	}
	d.RegistrationEndpoint = "https://as.example.com/register"
	if err := d.CheckRegistrationEndpoint(); err != nil {
		t.Error(err)
	}
}

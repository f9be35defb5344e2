package caddymodule_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obprofile"
	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// obServerAttributes are the attributes of an OB registration response the server assigns.
var obServerAttributes = []string{"client_id", "client_id_issued_at", "registration_client_uri",
	"registration_access_token", "client_secret", "client_secret_expires_at", "software_statement"}

// requestEnvelope are the claims of a registration request that are about the JWS, and of an
// SSA that are not flattened into the response.
var requestEnvelope = []string{"iss", "aud", "iat", "exp", "nbf", "jti", "software_statement"}

// asJSON is v as it reads back from JSON (so []string and []any compare equal).
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameAsJSON(t *testing.T, a, b any) bool {
	x, _ := json.Marshal(asJSON(t, a))
	y, _ := json.Marshal(asJSON(t, b))
	return string(x) == string(y)
}

// acceptedMetadata is what the OB profile (the gateway's default configuration) makes of a
// registration request of c; the default policy overrides nothing.
func acceptedMetadata(t *testing.T, c *tppclient.Client, ssa map[string]any, claims map[string]any) map[string]any {
	t.Helper()
	leaf, err := x509.ParseCertificate(clientCertificate(t, c).Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	md, derr := obprofile.Apply(nil, obprofile.Input{
		Claims: asJSON(t, claims).(map[string]any),
		SSA: &dcr.SoftwareStatement{SoftwareID: c.SoftwareID, Roles: stringsOf(ssa["software_roles"]),
			RedirectURIs: stringsOf(ssa["software_redirect_uris"])},
		ClientCert: leaf,
	})
	if derr != nil {
		t.Fatalf("the OB profile refuses the request: %v", derr)
	}
	return asJSON(t, md).(map[string]any)
}

// clientCertificate is the transport certificate c presents.
func clientCertificate(t *testing.T, c *tppclient.Client) tls.Certificate {
	t.Helper()
	certs := c.HTTP.Transport.(*http.Transport).TLSClientConfig.Certificates
	if len(certs) != 1 {
		t.Fatalf("client has %d certificates", len(certs))
	}
	return certs[0]
}

// ssaClaims are the SSA's claims the OB response flattens.
func ssaClaims(t *testing.T, ssa string) map[string]any {
	t.Helper()
	parts := strings.Split(ssa, ".")
	if len(parts) != 3 {
		t.Fatalf("SSA is not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	for _, k := range requestEnvelope {
		delete(claims, k)
	}
	return claims
}

// assertAccepted checks an OB registration response: exactly the accepted metadata, the SSA's
// claims flattened, and the server-assigned attributes; nothing the registrar sent the backend
// and nothing the backend added.
func assertAccepted(t *testing.T, what string, got, accepted, ssa map[string]any) {
	t.Helper()
	for k, v := range accepted {
		if !sameAsJSON(t, got[k], v) {
			t.Errorf("%s: %s = %v, want the accepted %v", what, k, got[k], v)
		}
	}
	for k, v := range got {
		if _, ok := accepted[k]; ok || slices.Contains(obServerAttributes, k) {
			continue
		}
		if s, ok := ssa[k]; ok && sameAsJSON(t, s, v) {
			continue
		}
		t.Errorf("%s: %s = %v was not accepted (the registrar's translation or the backend's?)", what, k, v)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// backendOnly are the attributes the backend registered that the TPP did not ask for.
func backendOnly(backend, accepted map[string]any) []string {
	var out []string
	for k := range backend {
		if _, ok := accepted[k]; !ok && !slices.Contains(obServerAttributes, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// TestUpstreamRegistrationIsWhatWasAccepted: with the real provider behind the gateway, 201,
// GET and PUT show the TPP exactly what the OB profile and the policy accepted, for each auth
// method, although the registrar asked the backend for more (implicit for code id_token, the
// SSA's jwks_uri, certificate-bound tokens) and the backend registered many fields of its own.
func TestUpstreamRegistrationIsWhatWasAccepted(t *testing.T) {
	g, as := startUpstream(t)
	ctx := gatewaytest.Context(t)
	for _, tc := range []struct {
		method string
		tpp    int
		edit   func(c *tppclient.Client, claims map[string]any)
	}{
		{"tls_client_auth", 1, func(*tppclient.Client, map[string]any) {}},
		{"private_key_jwt", 2, func(_ *tppclient.Client, claims map[string]any) {
			claims["token_endpoint_auth_method"] = "private_key_jwt"
			claims["token_endpoint_auth_signing_alg"] = "PS256"
			delete(claims, "tls_client_auth_subject_dn")
		}},
	} {
		t.Run(tc.method, func(t *testing.T) {
			c := newClient(t, g, tc.tpp)
			ssa := ssaClaims(t, c.SoftwareStatement)
			claims := c.Claims()
			tc.edit(c, claims)
			if _, ok := claims["tls_client_certificate_bound_access_tokens"]; ok {
				t.Fatal("an OB request does not ask for certificate-bound tokens itself")
			}
			accepted := acceptedMetadata(t, c, ssa, claims)

			r, err := c.Register(ctx, sign(t, c, claims, tppclient.SignOptions{}), tppclient.ContentTypeJOSE, "")
			if err != nil || r.Status != http.StatusCreated {
				t.Fatalf("register: %v %+v\n%s", err, r, g.Logs())
			}
			assertAccepted(t, "201", r.JSON, accepted, ssa)
			id, rat := r.JSON["client_id"].(string), r.JSON["registration_access_token"].(string)

			// The backend holds more than the TPP sees: the registrar's translation and the
			// provider's own fields.
			status, backend := backendRead(t, as, id, storedBackend(t, g, id)["registration_access_token"].(string))
			if status != http.StatusOK {
				t.Fatalf("backend read: %d", status)
			}
			extra := backendOnly(backend, accepted)
			for _, want := range []string{"jwks_uri", "tls_client_certificate_bound_access_tokens", "require_signed_request_object"} {
				if !slices.Contains(extra, want) {
					t.Fatalf("backend fields %v: want %s among them (else this test proves nothing)", extra, want)
				}
			}
			if !slices.Contains(stringsOf(backend["grant_types"]), "implicit") || slices.Contains(stringsOf(r.JSON["grant_types"]), "implicit") {
				t.Fatalf("grant_types: backend %v, TPP %v; want implicit in the backend's only", backend["grant_types"], r.JSON["grant_types"])
			}

			got, err := c.Get(ctx, id, rat)
			if err != nil || got.Status != http.StatusOK {
				t.Fatalf("GET: %v %+v", err, got)
			}
			assertAccepted(t, "GET", got.JSON, accepted, ssa)

			claims = c.Claims()
			tc.edit(c, claims)
			claims["scope"] = "openid accounts"
			claims["id_token_signed_response_alg"] = "ES256"
			accepted = acceptedMetadata(t, c, ssa, claims)
			up, err := c.Update(ctx, id, rat, sign(t, c, claims, tppclient.SignOptions{}))
			if err != nil || up.Status != http.StatusOK {
				t.Fatalf("PUT: %v %+v\n%s", err, up, g.Logs())
			}
			assertAccepted(t, "PUT", up.JSON, accepted, ssa)
			if got, err = c.Get(ctx, id, rat); err != nil || got.Status != http.StatusOK {
				t.Fatalf("GET after PUT: %v %+v", err, got)
			}
			assertAccepted(t, "GET after PUT", got.JSON, accepted, ssa)
			if _, backend = backendRead(t, as, id, storedBackend(t, g, id)["registration_access_token"].(string)); backend["id_token_signed_response_alg"] != "ES256" || backend["scope"] != accepted["scope"] {
				t.Fatalf("backend after PUT: %v", backend)
			}
			// The provider registered everything it was asked for (else the registrar warns).
			if strings.Contains(g.Logs(), "other than the gateway asked for") {
				t.Fatalf("the backend did not register what it was asked:\n%s", g.Logs())
			}
		})
	}
}

func stringsOf(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

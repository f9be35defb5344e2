package upstream

import (
	"context"
	"reflect"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dcrgate/dcrgate/dcr"
)

// acceptedByAuthMethod is metadata as the OB profile leaves it, for each auth method.
func acceptedByAuthMethod() map[string]map[string]any {
	return map[string]map[string]any{
		"tls_client_auth": {
			"token_endpoint_auth_method":   "tls_client_auth",
			"tls_client_auth_subject_dn":   "CN=sw1,OU=org1,O=Org,C=GB",
			"grant_types":                  []any{"authorization_code", "client_credentials"},
			"response_types":               []any{"code id_token"},
			"redirect_uris":                []any{"https://tpp.example/cb"},
			"id_token_signed_response_alg": "PS256",
			"request_object_signing_alg":   "PS256",
			"application_type":             "web",
			"scope":                        "openid accounts",
		},
		"private_key_jwt": {
			"token_endpoint_auth_method":      "private_key_jwt",
			"token_endpoint_auth_signing_alg": "ES256",
			"grant_types":                     []any{"client_credentials"},
			"scope":                           "accounts",
		},
	}
}

// oddBackendFields are what a backend adds to its answers: its defaults, fields of its own, and
// a value other than the one it was sent.
var oddBackendFields = map[string]any{
	"require_signed_request_object": true,
	"post_logout_redirect_uris":     []any{},
	"x_vendor_tenant":               map[string]any{"id": 7, "tier": "gold"},
	"subject_type":                  "public",
	"scope":                         "openid accounts payments",
}

// TestRegistrationIsWhatWasAccepted: the stored registration (what 201, GET and PUT show) is
// the accepted metadata, for each auth method, whatever the backend was sent (implicit,
// jwks_uri, the certificate binding) and whatever it answered (its own fields, a changed
// value); the backend's translation is kept beside it, and the difference is logged.
func TestRegistrationIsWhatWasAccepted(t *testing.T) {
	for method, accepted := range acceptedByAuthMethod() {
		t.Run(method, func(t *testing.T) {
			b := newFakeBackend()
			b.extra = oddBackendFields
			u, store := newRegistrar(t), newStore(t)
			core, logs := observer.New(zapcore.WarnLevel)
			u.logger = zap.New(core)

			x := exchange(t, store, b)
			x.AcceptedMetadata = clone(accepted)
			rec, _, err := x.register(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rec.Metadata, accepted) {
				t.Fatalf("registered metadata\n got %v\nwant %v", rec.Metadata, accepted)
			}
			stored, err := store.Get(context.Background(), rec.ClientID)
			if err != nil {
				t.Fatal(err)
			}
			if !sameJSON(stored.Metadata, accepted) {
				t.Fatalf("stored metadata\n got %v\nwant %v", stored.Metadata, accepted)
			}

			sent := b.bodies[0]
			if sent["jwks_uri"] != "https://keys.example/sw1.jwks" || sent[certificateBound] != true {
				t.Fatalf("backend request %v: want the SSA's jwks_uri and certificate-bound tokens", sent)
			}
			if method == "tls_client_auth" && !reflect.DeepEqual(sent["grant_types"], []any{"authorization_code", "client_credentials", "implicit"}) {
				t.Fatalf("backend grant_types %v: want implicit added for code id_token", sent["grant_types"])
			}
			if !sameJSON(stored.Backend[backendRequested], sent) {
				t.Fatalf("kept backend request %v, want what was sent %v", stored.Backend[backendRequested], sent)
			}
			warned := logs.FilterMessageSnippet("other than the gateway asked for").All()
			if len(warned) != 1 || !reflect.DeepEqual(warned[0].ContextMap()["metadata"], []any{"scope"}) {
				t.Fatalf("divergence log: %v", warned)
			}

			// PUT: the new accepted metadata, not the backend's answer to it.
			update := clone(accepted)
			update["scope"] = "accounts"
			delete(update, "request_object_signing_alg")
			x = exchange(t, store, b)
			x.Operation, x.ClientID, x.Existing, x.AcceptedMetadata = dcr.OpUpdate, rec.ClientID, stored, clone(update)
			got, _, err := x.update(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Metadata, update) {
				t.Fatalf("updated metadata\n got %v\nwant %v", got.Metadata, update)
			}
			put := b.bodies[len(b.bodies)-1]
			if put["client_id"] != rec.ClientID || put["scope"] != "accounts" || put[certificateBound] != true {
				t.Fatalf("backend update request %v", put)
			}
			if kept := got.Backend[backendRequested].(map[string]any); kept["scope"] != "accounts" || kept["client_id"] != nil {
				t.Fatalf("kept backend request after PUT %v", kept)
			}
		})
	}
}

// TestAcceptedMetadataDropsServerAttributes: what a TPP cannot choose is not its metadata.
func TestAcceptedMetadataDropsServerAttributes(t *testing.T) {
	got := acceptedMetadata(map[string]any{"scope": "accounts", "client_id": "mine", "client_secret": "s",
		"registration_access_token": "t", "registration_client_uri": "https://x", "client_id_issued_at": 1,
		"client_secret_expires_at": 0, "software_statement": "a.b.c", "jti": "j", "iss": "sw1"})
	if !reflect.DeepEqual(got, map[string]any{"scope": "accounts"}) {
		t.Fatalf("accepted metadata %v", got)
	}
}

// TestCertificateBoundAccessTokens: on by default for every client, off with the setting, and a
// value the client's accepted metadata carries is the one sent.
func TestCertificateBoundAccessTokens(t *testing.T) {
	off, on := false, true
	for _, tc := range []struct {
		name    string
		setting *bool
		client  any // the accepted metadata's value; nil = absent
		want    any // sent to the backend; nil = absent
	}{
		{"default", nil, nil, true},
		{"on", &on, nil, true},
		{"off", &off, nil, nil},
		{"the client says false", nil, false, false},
		{"the client says true, setting off", &off, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend()
			u := newRegistrar(t)
			u.CertificateBoundAccessTokens = tc.setting
			x := exchange(t, newStore(t), b)
			if tc.client != nil {
				x.AcceptedMetadata[certificateBound] = tc.client
			}
			rec, _, err := x.register(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := b.bodies[0][certificateBound]; got != tc.want || ok != (tc.want != nil) {
				t.Fatalf("sent %s = %v (present %v), want %v", certificateBound, got, ok, tc.want)
			}
			if got := rec.Metadata[certificateBound]; got != tc.client {
				t.Fatalf("registered %s = %v, want the client's %v", certificateBound, got, tc.client)
			}
		})
	}
}

// TestBackendIgnoringTheBindingIsLogged: a backend without certificate-bound tokens drops the
// metadata; the operator is told, and the registration still succeeds with what was accepted.
func TestBackendIgnoringTheBindingIsLogged(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setting *bool
		warn    int
	}{{"binding asked for", nil, 1}, {"binding off", new(bool), 0}} {
		t.Run(tc.name, func(t *testing.T) {
			b := newFakeBackend()
			b.ignore = []string{certificateBound, "software_id"}
			u := newRegistrar(t)
			u.CertificateBoundAccessTokens = tc.setting
			core, logs := observer.New(zapcore.DebugLevel)
			u.logger = zap.New(core)
			x := exchange(t, newStore(t), b)
			x.AcceptedMetadata["software_id"] = "sw1"
			accepted := clone(x.AcceptedMetadata)
			rec, _, err := x.register(context.Background(), u)
			if err != nil || !reflect.DeepEqual(rec.Metadata, accepted) {
				t.Fatalf("register: %v, metadata %v", err, rec)
			}
			if n := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessageSnippet("ignored tls_client_certificate_bound_access_tokens").Len(); n != tc.warn {
				t.Fatalf("%d warnings about the binding, want %d: %v", n, tc.warn, logs.All())
			}
			if logs.FilterMessageSnippet("other than the gateway asked for").Len() != 0 {
				t.Fatal("an ignored field is not a changed one")
			}
			if logs.FilterLevelExact(zapcore.DebugLevel).FilterMessageSnippet("ignored metadata").Len() != 1 {
				t.Fatalf("ignored fields not logged at debug: %v", logs.All())
			}
		})
	}
}

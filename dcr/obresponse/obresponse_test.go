package obresponse

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

const endpoint = "https://gw.example/register"

func record() *dcr.Registration {
	return &dcr.Registration{
		ClientID:          "c1",
		SoftwareStatement: "ssa.jws.sig",
		IssuedAt:          time.Unix(1700000000, 0),
		Metadata: map[string]any{
			"redirect_uris": []string{"https://tpp.example/cb"},
			"scope":         "accounts openid",
		},
		SSAClaims: map[string]any{
			"iss": "OpenBanking Ltd", "iat": 1.0, "exp": 2.0, "nbf": 1.0, "jti": "j1", "aud": "x",
			"software_id": "s1", "org_id": "o1", "software_roles": []any{"AISP"},
		},
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*dcr.Registration)
		creds  map[string]any
		want   map[string]any // attributes that must have these values
		absent []string       // attributes that must not be there
	}{
		{
			name: "creation: metadata, flattened SSA claims, server-assigned attributes and credentials",
			creds: map[string]any{"registration_access_token": "rat", "client_secret": "sec",
				"client_secret_expires_at": 0},
			want: map[string]any{
				"scope": "accounts openid", "software_id": "s1", "org_id": "o1",
				"software_roles": []any{"AISP"}, "software_statement": "ssa.jws.sig", "client_id": "c1",
				"client_id_issued_at": int64(1700000000), "registration_client_uri": endpoint + "/c1",
				"registration_access_token": "rat", "client_secret": "sec", "client_secret_expires_at": 0,
			},
			absent: []string{"iss", "iat", "exp", "nbf", "jti", "aud"},
		},
		{
			name:   "read or update: no credentials",
			want:   map[string]any{"client_id": "c1", "software_id": "s1"},
			absent: []string{"registration_access_token", "client_secret", "client_secret_expires_at"},
		},
		{
			name: "registered metadata wins over an SSA claim of the same name",
			edit: func(r *dcr.Registration) { r.SSAClaims["scope"] = "payments" },
			want: map[string]any{"scope": "accounts openid"},
		},
		{
			name: "neither metadata nor SSA claims set a server-assigned attribute",
			edit: func(r *dcr.Registration) {
				r.Metadata["client_id"] = "other"
				r.Metadata["registration_client_uri"] = "https://evil.example/"
				r.SSAClaims["software_statement"] = "forged"
				r.SSAClaims["client_id_issued_at"] = 1.0
			},
			want: map[string]any{"client_id": "c1", "registration_client_uri": endpoint + "/c1",
				"software_statement": "ssa.jws.sig", "client_id_issued_at": int64(1700000000)},
		},
		{
			name: "a claim sent under its OB DCR v3.1 name answers under that name",
			edit: func(r *dcr.Registration) {
				r.Metadata["tls_client_auth_subject_dn"] = "CN=s1,OU=o1"
				r.MetadataNames = map[string][]string{"tls_client_auth_subject_dn": {"tls_client_auth_dn"}}
			},
			want:   map[string]any{"tls_client_auth_dn": "CN=s1,OU=o1"},
			absent: []string{"tls_client_auth_subject_dn"},
		},
		{
			name: "a claim sent under both names answers under both",
			edit: func(r *dcr.Registration) {
				r.Metadata["tls_client_auth_subject_dn"] = "CN=s1,OU=o1"
				r.MetadataNames = map[string][]string{"tls_client_auth_subject_dn": {"tls_client_auth_subject_dn", "tls_client_auth_dn"}}
			},
			want: map[string]any{"tls_client_auth_dn": "CN=s1,OU=o1", "tls_client_auth_subject_dn": "CN=s1,OU=o1"},
		},
		{
			name: "a sent name of a claim that is not registered changes nothing",
			edit: func(r *dcr.Registration) {
				r.MetadataNames = map[string][]string{"tls_client_auth_subject_dn": {"tls_client_auth_dn"}}
			},
			absent: []string{"tls_client_auth_dn", "tls_client_auth_subject_dn"},
		},
		{
			name:   "a record without SSA claims or metadata still has its server-assigned attributes",
			edit:   func(r *dcr.Registration) { r.SSAClaims, r.Metadata = nil, nil },
			want:   map[string]any{"client_id": "c1", "software_statement": "ssa.jws.sig"},
			absent: []string{"software_id", "scope"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := record()
			if tc.edit != nil {
				tc.edit(rec)
			}
			before := rec.Clone()
			got := Build(rec, tc.creds, endpoint)
			for k, v := range tc.want {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
			for _, k := range tc.absent {
				if v, ok := got[k]; ok {
					t.Errorf("%s must not be in the answer (got %#v)", k, v)
				}
			}
			if !reflect.DeepEqual(rec, before) {
				t.Error("Build modified the registration")
			}
		})
	}
}

// TestServerAssignedIsWhatBuildSets: every attribute of ServerAssigned is one the answer sets
// itself (given a creation's credentials), so removing them from client metadata loses nothing
// the client can see.
func TestServerAssignedIsWhatBuildSets(t *testing.T) {
	rec := record()
	for _, k := range ServerAssigned {
		rec.Metadata[k] = "from the client"
		rec.SSAClaims[k] = "from the SSA"
	}
	creds := map[string]any{"registration_access_token": "rat", "client_secret": "sec", "client_secret_expires_at": 0}
	got := Build(rec, creds, endpoint)
	for _, k := range ServerAssigned {
		if got[k] == "from the client" || got[k] == "from the SSA" {
			t.Errorf("%s is server-assigned but the answer took it from the client or the SSA", k)
		}
	}
	if len(ServerAssigned) != len(slices.Compact(slices.Sorted(slices.Values(ServerAssigned)))) {
		t.Error("ServerAssigned lists an attribute twice")
	}
}

func TestUnderSentNames(t *testing.T) {
	out := map[string]any{"a": 1, "b": 2}
	UnderSentNames(out, map[string]any{"a": 1, "b": 2}, map[string][]string{"a": {"old_a"}, "b": nil})
	want := map[string]any{"old_a": 1, "b": 2}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %v, want %v", out, want)
	}
}

func TestFlattenSSA(t *testing.T) {
	out := map[string]any{}
	FlattenSSA(out, map[string]any{"iss": "d", "aud": "a", "jti": "j", "iat": 1, "exp": 2, "nbf": 1, "org_name": "Org"})
	if !reflect.DeepEqual(out, map[string]any{"org_name": "Org"}) {
		t.Fatalf("got %v", out)
	}
}

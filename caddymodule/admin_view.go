package caddymodule

import (
	"strings"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

// clientView is what the admin API shows of a registration. It is built field by field from
// an allow-list, never by serialising the record: the record holds the registration token
// hash, the client secret hash, the compact software statement and the upstream registrar's
// backend data (which can hold the backend's own registration token), none of which an
// operator's screen or script needs.
type clientView struct {
	ClientID   string `json:"client_id"`
	Version    int64  `json:"version"`
	Status     string `json:"status"`
	SoftwareID string `json:"software_id"`
	OrgID      string `json:"org_id"`
	ClientName string `json:"client_name,omitempty"`
	AuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	Directory  string `json:"directory,omitempty"`
	// CertSubject and CertThumbprint are the transport certificate's: public data.
	CertSubject    string         `json:"cert_subject,omitempty"`
	CertThumbprint string         `json:"cert_thumbprint,omitempty"`
	Metadata       map[string]any `json:"metadata,omitempty"`
	SSAClaims      map[string]any `json:"ssa_claims,omitempty"`
	// Upstream reports that the client also exists in the backend (an upstream registrar).
	Upstream  bool       `json:"upstream"`
	IssuedAt  time.Time  `json:"issued_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

func newClientView(rec *dcr.Registration) clientView {
	v := clientView{
		ClientID:       rec.ClientID,
		Version:        rec.Version,
		Status:         statusLive,
		SoftwareID:     rec.SoftwareID,
		OrgID:          rec.OrgID,
		AuthMethod:     rec.AuthMethod(),
		Directory:      rec.Directory,
		CertSubject:    rec.CertSubject,
		CertThumbprint: rec.CertThumbprint,
		Metadata:       withoutCredentials(rec.Metadata),
		SSAClaims:      withoutCredentials(rec.SSAClaims),
		Upstream:       len(rec.Backend) > 0,
		IssuedAt:       rec.IssuedAt,
		UpdatedAt:      rec.UpdatedAt,
		DeletedAt:      rec.DeletedAt,
	}
	v.ClientName, _ = rec.Metadata["client_name"].(string)
	if rec.Deleted() {
		v.Status = statusDeleted
	}
	return v
}

// Registration statuses, as the list filter and the view name them.
const (
	statusLive    = "live"
	statusDeleted = "deleted"
)

// withoutCredentials copies m without anything that is or may be a credential. Client
// metadata as stored has none (credentials are returned once and stored as hashes), but a
// custom registrar or a future field must not turn the operator's view into a leak, so the
// names are filtered here too, at every depth.
func withoutCredentials(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if credentialName(k) {
			continue
		}
		out[k] = withoutCredentialsIn(v)
	}
	return out
}

func withoutCredentialsIn(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return withoutCredentials(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = withoutCredentialsIn(e)
		}
		return out
	}
	return v
}

// credentialName matches the names under which a secret, a token or a hash of one is kept:
// client_secret, registration_access_token, access_token, *_secret, *_token, *_hash, and the
// private parts of a JWK (d, p, q, dp, dq, qi, k).
func credentialName(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "client_secret", "registration_access_token", "access_token", "refresh_token", "id_token",
		"software_statement", "d", "p", "q", "dp", "dq", "qi", "k", "oth":
		return true
	}
	return strings.HasSuffix(n, "_secret") || strings.HasSuffix(n, "_token") || strings.HasSuffix(n, "_hash") ||
		strings.Contains(n, "password")
}

package dcr

import "time"

// Registration is the stored record of one registered client. Secrets are stored only as
// hashes: the registration access token and client secret are returned once, on creation.
type Registration struct {
	ClientID   string `json:"client_id"`
	Version    int64  `json:"version"`
	SoftwareID string `json:"software_id"`
	OrgID      string `json:"org_id"`

	// Metadata is the registered client metadata, as returned to the client (without the
	// flattened SSA claims, which come from SSAClaims).
	Metadata map[string]any `json:"metadata"`
	// MetadataNames maps a registered metadata name to the names the client sent it under,
	// when they differ: an OB DCR v3.1 client's tls_client_auth_dn is registered as
	// tls_client_auth_subject_dn (so the policy and the backend see one name) and answered as
	// tls_client_auth_dn ({"tls_client_auth_subject_dn": ["tls_client_auth_dn"]}).
	MetadataNames map[string][]string `json:"metadata_names,omitempty"`
	// SoftwareStatement is the compact SSA the registration was made (or last updated) with.
	SoftwareStatement string         `json:"software_statement"`
	SSAClaims         map[string]any `json:"ssa_claims"`
	// Directory is the name of the trusted directory that signed the SSA.
	Directory string `json:"directory,omitempty"`

	// RegistrationTokenHash is the hex SHA-256 of the RFC 7592 registration access token.
	RegistrationTokenHash string `json:"registration_token_hash"`
	// ClientSecretHash is the hex SHA-256 of the client secret, for client_secret_* methods.
	ClientSecretHash string `json:"client_secret_hash,omitempty"`

	// The transport certificate the client registered with: the binding for management calls.
	CertSubject    string `json:"cert_subject,omitempty"`
	CertThumbprint string `json:"cert_thumbprint,omitempty"`

	// SigningKey is the request-signing key of the registration (or of its last update) and
	// its SSA's revoked key sets, which management calls look it up in again (none on
	// registrations made before revoked keys were checked: nothing is looked up).
	SigningKey *RegisteredKey `json:"signing_key,omitempty"`

	// Backend holds what an upstream registrar needs to manage the client in the backend.
	Backend map[string]any `json:"backend,omitempty"`

	IssuedAt  time.Time  `json:"issued_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

// Deleted reports whether the record is a tombstone.
func (r *Registration) Deleted() bool { return r != nil && r.DeletedAt != nil }

// Clone returns a deep enough copy for a store to hand out without sharing maps.
func (r *Registration) Clone() *Registration {
	if r == nil {
		return nil
	}
	c := *r
	c.Metadata = cloneMap(r.Metadata)
	c.SSAClaims = cloneMap(r.SSAClaims)
	c.Backend = cloneMap(r.Backend)
	if r.MetadataNames != nil {
		c.MetadataNames = make(map[string][]string, len(r.MetadataNames))
		for k, v := range r.MetadataNames {
			c.MetadataNames[k] = append([]string(nil), v...)
		}
	}
	if r.SigningKey != nil {
		k := *r.SigningKey
		k.RevokedKeySets = append([]RevokedKeySet(nil), r.SigningKey.RevokedKeySets...)
		c.SigningKey = &k
	}
	if r.DeletedAt != nil {
		t := *r.DeletedAt
		c.DeletedAt = &t
	}
	return &c
}

func cloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

package dcr

// The claims of an OB software statement that name its revoked key sets.
const (
	ClaimSoftwareJWKSRevoked = "software_jwks_revoked_endpoint"
	ClaimOrgJWKSRevoked      = "org_jwks_revoked_endpoint"
)

// RevokedKeySet is one revoked key set an SSA names: the claim it came from and its URL,
// already checked against the directory's hosts.
type RevokedKeySet struct {
	Claim string `json:"claim"`
	URL   string `json:"url"`
}

// RegisteredKey is the request-signing key a registration was made (or last updated) with
// and the revoked key sets of its SSA: what a management call looks up again, so that a key
// revoked after registering cannot read, update or delete its client.
type RegisteredKey struct {
	KeyID string `json:"kid"`
	// Thumbprint is the key's RFC 7638 SHA-256 thumbprint, base64url.
	Thumbprint     string          `json:"thumbprint,omitempty"`
	RevokedKeySets []RevokedKeySet `json:"revoked_key_sets,omitempty"`
}

// SigningKey is the key that verified a signed request and what the gateway checked of it
// against the SSA's revoked key sets (the policy input's revocation.signing_key).
type SigningKey struct {
	RegisteredKey
	Revocation KeyRevocation
}

// KeyRevocation is the outcome of looking a key up in its revoked key sets.
type KeyRevocation struct {
	// Checked is true when at least one revoked set was read (false: the SSA names none, or
	// none could be fetched).
	Checked bool
	// Sources are the URLs of the revoked sets the key was looked up in.
	Sources []string
	// FailMode is how a set that cannot be fetched is treated: "hard" or "soft".
	FailMode string
	// Unavailable are the sources that could not be fetched (only under soft fail: a hard
	// fail refuses the call).
	Unavailable []string
}

// Registered is what a registrar stores of k (nil when no key verified the request).
func (k *SigningKey) Registered() *RegisteredKey {
	if k == nil {
		return nil
	}
	r := k.RegisteredKey
	r.RevokedKeySets = append([]RevokedKeySet(nil), k.RevokedKeySets...)
	return &r
}

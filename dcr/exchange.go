package dcr

import (
	"crypto/x509"
	"net/http"
	"time"

	"github.com/dcrgate/dcrgate/internal/jose"
)

// Operation is what a request to the DCR endpoint asks for.
type Operation string

const (
	OpRegister Operation = "register"
	OpRead     Operation = "read"
	OpUpdate   Operation = "update"
	OpDelete   Operation = "delete"
)

// Exchange carries one DCR request through the pipeline. Protections read what earlier ones
// verified and add what they verify; nothing in it is trusted until the protection that owns
// a field has filled it.
type Exchange struct {
	Operation Operation
	Request   *http.Request
	// ClientID is the path client_id on read/update/delete.
	ClientID string
	Now      time.Time
	// EndpointURL is the absolute URL of the registration endpoint (for registration_client_uri).
	EndpointURL string
	// Store is the configured registration store.
	Store Store
	// Next sends a request to the handler after the DCR handler (normally reverse_proxy to
	// the backend), so that a registrar can talk to the backend with Caddy's upstream TLS,
	// load balancing and health checks.
	Next func(w http.ResponseWriter, r *http.Request) error

	// ClientCert is the TLS client certificate Caddy verified (nil if none was presented).
	ClientCert *x509.Certificate

	// Body is the raw request body (a compact JWS on register/update).
	Body []byte
	// UnverifiedClaims is the request JWS payload decoded without verifying it; protections
	// use it only to locate what verifies it (the software statement inside).
	UnverifiedClaims map[string]any
	// RequestJWS is Body decoded once, so that verifying it does not decode it again.
	RequestJWS *jose.Parsed
	// RequestClaims is the verified request JWS payload (set by the signed_request protection).
	RequestClaims map[string]any
	// RequestKeyID is the kid that verified the request.
	RequestKeyID string

	// SoftwareStatement is the verified SSA (set by the software_statement protection).
	SoftwareStatement *SoftwareStatement

	// Existing is the stored registration on read/update/delete (nil if there is none: the
	// call is then refused after the protections ran, so that one that must act on an
	// unknown client, such as revoking the token it was called with, can).
	Existing *Registration

	// BearerToken is the RFC 6750 bearer token of a read/update/delete, if it sent one (on
	// register, a protection that wants one reads it with BearerToken).
	BearerToken string
	// AccessTokenClaims are the verified claims (or introspection result) of an access token
	// the access_token protection accepted.
	AccessTokenClaims map[string]any
	// RegistrationTokenValid reports that BearerToken is the RFC 7592 registration access
	// token of Existing.
	RegistrationTokenValid bool
	// ManagementAuthorized decides a read/update/delete: the handler sets it to
	// RegistrationTokenValid before the protections run; a protection that authenticates
	// management calls another way (client-credentials tokens) may grant or withdraw it.
	// The handler refuses the call with 401 unless it is true once the protections are done.
	ManagementAuthorized bool
	// ManagementRefusal, once set (with RefuseManagement), refuses a read/update/delete
	// whatever ManagementAuthorized says, and says why for the audit log only: the answer is
	// the uniform NotAuthorized whatever the reason. A protection refuses this way rather than
	// by returning an error, so that every authenticating protection still runs and a call
	// costs and answers the same whether or not the client exists (a token verifier that is
	// down answers 503 for known and unknown clients alike).
	ManagementRefusal string

	// Metadata is the client metadata to register, after the OB profile rules (and policy
	// overrides) have been applied.
	Metadata map[string]any
	// MetadataNames are the names the client sent metadata under where they differ from the
	// registered ones (see Registration.MetadataNames); set with Metadata.
	MetadataNames map[string][]string

	// Claims are one-time keys (replayed jti, consumed tokens) that the handler records only
	// once every check has passed, so a rejected request consumes nothing.
	Claims []OnceClaim
	// AfterCommit runs after a registration was stored (e.g. revoke a consumed token).
	AfterCommit []func()
}

// OnceClaim is a key a request uses up when it succeeds.
type OnceClaim struct {
	Key string
	TTL time.Duration
	// Reject is returned when the key was already used.
	Reject *Error
}

// SoftwareStatement is a verified SSA and the directory that signed it.
type SoftwareStatement struct {
	Raw       string
	Claims    map[string]any
	Directory string
	// JWKSURI is the software_jwks_endpoint, already checked against the directory's hosts.
	JWKSURI string
	// AllowedHosts are the hosts the directory lets its software_jwks_endpoints use.
	AllowedHosts []string
	SoftwareID   string
	OrgID        string
	Roles        []string
	// RedirectURIs are the software_redirect_uris.
	RedirectURIs []string
}

// RefuseManagement refuses the read/update/delete of x (see ManagementRefusal); the first
// reason given is kept.
func (x *Exchange) RefuseManagement(reason string) {
	if x.ManagementRefusal == "" {
		x.ManagementRefusal = reason
	}
}

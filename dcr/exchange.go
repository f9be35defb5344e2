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

// Exchange is one DCR call as the pipeline knows it: the request's facts, which the handler
// sets before the first phase, and what the phases verified, which the handler copies from
// the protections' Results at the end of the phase that owns each field (see Result). Every
// field is set by exactly one of them, named in its comment. Protections read an Exchange and
// never write it; a field of a later phase is empty while an earlier phase runs.
type Exchange struct {
	// The request (set by the handler before the phases).

	Operation Operation
	Request   *http.Request
	// ClientID is the path client_id on read/update/delete; empty on register (the
	// registrar issues it).
	ClientID string
	Now      time.Time
	// EndpointURL is the absolute URL of the registration endpoint (for registration_client_uri).
	EndpointURL string
	// ClientCert is the TLS client certificate Caddy verified (nil if none was presented).
	ClientCert *x509.Certificate
	// Body is the raw request body (a compact JWS on register/update).
	Body []byte
	// RequestJWS is Body decoded once, so that verifying it does not decode it again.
	RequestJWS *jose.Parsed
	// UnverifiedClaims is the request JWS payload decoded without verifying it; protections
	// use it only to locate what verifies it (the software statement inside).
	UnverifiedClaims map[string]any
	// BearerToken is the RFC 6750 bearer token of a read/update/delete, if it sent one (on
	// register, a protection that wants one reads it with BearerToken).
	BearerToken string
	// Existing is the stored registration on read/update/delete (nil if there is none: the
	// call is then refused after the authenticate phase, so that a protection that must act
	// on an unknown client, such as revoking the token it was called with, can).
	Existing *Registration

	// Authenticate phase.

	// AccessTokenClaims are the verified claims (or introspection result) of an access token
	// an authenticating protection accepted: the register token, or the client's own
	// client-credentials token on a management call.
	AccessTokenClaims map[string]any

	// VerifyStatement phase.

	// SoftwareStatement is the verified SSA.
	SoftwareStatement *SoftwareStatement

	// VerifyRequest phase.

	// RequestClaims is the verified request JWS payload.
	RequestClaims map[string]any
	// RequestKeyID is the kid that verified the request.
	RequestKeyID string

	// Profile phase.

	// Metadata is the client metadata the OB profile rules made of the request (what the
	// policy sees as its input's metadata).
	Metadata map[string]any
	// MetadataNames are the names the client sent metadata under where they differ from the
	// registered ones (see Registration.MetadataNames); the registrar stores them with the
	// registration, so that every answer uses the client's names.
	MetadataNames map[string][]string

	// Decide phase.

	// AcceptedMetadata is what the registrar registers: Metadata with the decision's
	// overrides (which may only narrow it) applied; Metadata itself when nothing overrode it.
	AcceptedMetadata map[string]any
}

// OnceClaim is a key a request uses up when it succeeds (a request jti, a single-use token).
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

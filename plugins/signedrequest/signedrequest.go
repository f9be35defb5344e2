// Package signedrequest is the dcr.protections.signed_request protection: the registration
// request body is a compact JWS signed by the TPP, with OB DCR v3.2 envelope claims.
package signedrequest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jose"
	"github.com/dcrgate/dcrgate/internal/keyset"
)

func init() {
	caddy.RegisterModule(SignedRequest{})
}

// MaxJTILength bounds the jti, which becomes a replay-cache key.
const MaxJTILength = 256

// SignedRequest verifies the request JWS and its envelope claims (iss, aud, iat, exp, jti).
type SignedRequest struct {
	// Audience lists the identifiers of this ASPSP accepted in `aud` (required).
	Audience []string `json:"audience"`
	// Algorithms allowed for the request signature; default PS256, ES256.
	Algorithms []string `json:"algorithms,omitempty"`
	// Keys verify the request. Unset (the default): the JWKS at the verified software
	// statement's `software_jwks_endpoint`, fetched only from the directory's jwks_hosts.
	Keys *keyset.Config `json:"keys,omitempty"`
	// Leeway for clock skew on iat/exp; default 30s.
	Leeway caddy.Duration `json:"leeway,omitempty"`
	// MaxAge rejects a request whose iat is older than this; default 1h.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
	// MaxLifetime rejects a request whose exp is further than this after its iat; default 1h.
	// It also bounds how long a jti is remembered.
	MaxLifetime caddy.Duration `json:"max_lifetime,omitempty"`
	// Fetch bounds JWKS fetches.
	Fetch keyset.FetchConfig `json:"fetch,omitzero"`

	algs    []jwa.SignatureAlgorithm
	keys    jose.KeySource
	fetcher *keyset.Fetcher
}

// CaddyModule returns the Caddy module information.
func (SignedRequest) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.protections.signed_request",
		New: func() caddy.Module { return new(SignedRequest) },
	}
}

// Provision sets defaults and opens the key source.
func (s *SignedRequest) Provision(ctx caddy.Context) error {
	if len(s.Algorithms) == 0 {
		s.Algorithms = []string{"PS256", "ES256"}
	}
	if s.Leeway == 0 {
		s.Leeway = caddy.Duration(30 * time.Second)
	}
	if s.MaxAge == 0 {
		s.MaxAge = caddy.Duration(time.Hour)
	}
	if s.MaxLifetime == 0 {
		s.MaxLifetime = caddy.Duration(time.Hour)
	}
	var err error
	if s.algs, err = jose.ParseAlgs(s.Algorithms); err != nil {
		return fmt.Errorf("signed_request: algorithms: %w", err)
	}
	if s.fetcher, err = s.Fetch.Acquire(ctx); err != nil {
		return fmt.Errorf("signed_request: fetch: %w", err)
	}
	if s.Keys != nil {
		if s.keys, err = s.Keys.Open(s.fetcher.Fetcher); err != nil {
			return fmt.Errorf("signed_request: keys: %w", err)
		}
	}
	return nil
}

// Validate checks the configuration.
func (s *SignedRequest) Validate() error {
	if len(s.Audience) == 0 {
		return errors.New("signed_request: audience is required (this ASPSP's identifiers accepted in aud)")
	}
	if s.MaxAge < 0 || s.MaxLifetime < 0 || s.Leeway < 0 {
		return errors.New("signed_request: durations must not be negative")
	}
	return nil
}

// Cleanup releases the shared fetcher.
func (s *SignedRequest) Cleanup() error {
	s.fetcher.Release()
	return nil
}

// UsesSoftwareStatementKeys reports whether the request keys come from the SSA, in which case
// the software_statement protection must run before this one.
func (s *SignedRequest) UsesSoftwareStatementKeys() bool { return s.Keys == nil }

// Phase is verify_request: the request is verified with the keys of the verified SSA.
func (s *SignedRequest) Phase() dcr.Phase { return dcr.PhaseVerifyRequest }

// Protect verifies the request on register and update.
func (s *SignedRequest) Protect(ctx context.Context, x *dcr.Exchange, _ dcr.Registry) (dcr.Result, error) {
	if x.Operation != dcr.OpRegister && x.Operation != dcr.OpUpdate {
		return dcr.Result{}, nil
	}
	keys := s.keys
	fromSSA := keys == nil
	if fromSSA {
		if x.SoftwareStatement == nil {
			return dcr.Result{}, dcr.BadSoftwareStatement("a verified software statement is required to find the request signing keys")
		}
		src, err := s.fetcher.Source(x.SoftwareStatement.JWKSURI, x.SoftwareStatement.AllowedHosts)
		if err != nil {
			return dcr.Result{}, dcr.BadSoftwareStatement("software_jwks_endpoint cannot be used: %v", err)
		}
		keys = src
	}
	var (
		hdr    jose.Header
		claims map[string]any
		err    error
	)
	if x.RequestJWS != nil { // decoded once by the handler
		hdr, claims, err = x.RequestJWS.Verify(ctx, s.algs, keys)
	} else {
		hdr, claims, err = jose.Verify(ctx, x.Body, s.algs, keys)
	}
	if err != nil {
		if errors.Is(err, jose.ErrKeyUnavailable) {
			if fromSSA {
				// The TPP's own JWKS endpoint is failing: the request cannot be verified, which
				// is the TPP's problem to fix, not an outage of this service.
				return dcr.Result{}, dcr.BadMetadata("the request signing keys could not be fetched from software_jwks_endpoint").WithCause(err)
			}
			return dcr.Result{}, dcr.Unavailable(err, "the request signing keys are unavailable")
		}
		return dcr.Result{}, dcr.BadMetadata("request signature is not valid: %v", err)
	}
	claim, derr := s.checkClaims(x, claims)
	if derr != nil {
		return dcr.Result{}, derr
	}
	return dcr.Result{RequestClaims: claims, RequestKeyID: hdr.Kid, Once: []dcr.OnceClaim{claim}}, nil
}

// checkClaims applies the envelope rules and returns the jti replay claim to commit.
func (s *SignedRequest) checkClaims(x *dcr.Exchange, claims map[string]any) (dcr.OnceClaim, *dcr.Error) {
	now, leeway := x.Now, time.Duration(s.Leeway)
	iss, ok, err := jose.StringClaim(claims, "iss")
	if err != nil || !ok || iss == "" {
		return dcr.OnceClaim{}, dcr.BadMetadata("iss is required and must be a string")
	}
	if x.SoftwareStatement != nil && iss != x.SoftwareStatement.SoftwareID {
		return dcr.OnceClaim{}, dcr.BadMetadata("iss %q must equal the software statement's software_id", iss)
	}
	if _, present := claims["aud"]; !present {
		return dcr.OnceClaim{}, dcr.BadMetadata("aud is required")
	}
	if ok, err := jose.AudienceContains(claims, s.Audience); err != nil {
		return dcr.OnceClaim{}, dcr.BadMetadata("aud must be a string or an array of strings")
	} else if !ok {
		return dcr.OnceClaim{}, dcr.BadMetadata("aud does not name this authorization server (expected %s)", strings.Join(s.Audience, " or "))
	}
	iat, ok, err := jose.NumericDate(claims, "iat")
	if err != nil || !ok {
		return dcr.OnceClaim{}, dcr.BadMetadata("iat is required and must be a NumericDate")
	}
	if iat.After(now.Add(leeway)) {
		return dcr.OnceClaim{}, dcr.BadMetadata("iat is in the future")
	}
	if iat.Before(now.Add(-time.Duration(s.MaxAge) - leeway)) {
		return dcr.OnceClaim{}, dcr.BadMetadata("iat is older than %s", time.Duration(s.MaxAge))
	}
	exp, ok, err := jose.NumericDate(claims, "exp")
	if err != nil || !ok {
		return dcr.OnceClaim{}, dcr.BadMetadata("exp is required and must be a NumericDate")
	}
	if !now.Before(exp.Add(leeway)) {
		return dcr.OnceClaim{}, dcr.BadMetadata("the request has expired (exp is in the past)")
	}
	if !exp.After(iat) {
		return dcr.OnceClaim{}, dcr.BadMetadata("exp must be after iat")
	}
	if exp.Sub(iat) > time.Duration(s.MaxLifetime) {
		return dcr.OnceClaim{}, dcr.BadMetadata("exp is more than %s after iat", time.Duration(s.MaxLifetime))
	}
	if nbf, ok, err := jose.NumericDate(claims, "nbf"); err != nil {
		return dcr.OnceClaim{}, dcr.BadMetadata("nbf must be a NumericDate")
	} else if ok && nbf.After(now.Add(leeway)) {
		return dcr.OnceClaim{}, dcr.BadMetadata("the request is not valid yet (nbf)")
	}
	jti, ok, err := jose.StringClaim(claims, "jti")
	if err != nil || !ok || jti == "" {
		return dcr.OnceClaim{}, dcr.BadMetadata("jti is required and must be a non-empty string")
	}
	if len(jti) > MaxJTILength {
		return dcr.OnceClaim{}, dcr.BadMetadata("jti is longer than %d characters", MaxJTILength)
	}
	ttl := exp.Add(leeway).Sub(now)
	if ttl < time.Second {
		ttl = time.Second
	}
	return dcr.OnceClaim{
		Key:    ReplayKey(iss, jti),
		TTL:    ttl,
		Reject: dcr.BadMetadata("jti %q has already been used", jti),
	}, nil
}

// ReplayKey is the once-store key of a request jti: per issuer, since jti is unique only
// within its issuer.
func ReplayKey(iss, jti string) string { return "jti\x00" + iss + "\x00" + jti }

// Interface guards
var (
	_ caddy.Provisioner  = (*SignedRequest)(nil)
	_ caddy.Validator    = (*SignedRequest)(nil)
	_ caddy.CleanerUpper = (*SignedRequest)(nil)
	_ dcr.Protection     = (*SignedRequest)(nil)
)

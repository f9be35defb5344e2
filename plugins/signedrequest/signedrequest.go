// Package signedrequest is the dcr.protections.signed_request protection: the registration
// request body is a compact JWS signed by the TPP, with OB DCR v3.2 envelope claims.
//
// It is an adapter: Caddy config and key sources in, the signature verified by internal/jose,
// the envelope rules (iss, aud, iat, exp, nbf, jti, lifetime, leeway) applied by dcr/envelope.
package signedrequest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/envelope"
	"github.com/dcrgate/dcrgate/dcr/revokedkeys"
	"github.com/dcrgate/dcrgate/internal/jose"
	"github.com/dcrgate/dcrgate/internal/keyset"
)

func init() {
	caddy.RegisterModule(SignedRequest{})
}

// SignedRequest verifies the request JWS and its envelope claims (iss, aud, iat, exp, jti).
type SignedRequest struct {
	// Audience lists the identifiers of this ASPSP accepted in `aud` (required).
	Audience []string `json:"audience"`
	// Algorithms allowed for the request signature; default PS256, ES256.
	Algorithms []string `json:"algorithms,omitempty"`
	// Keys verify the request. Unset (the default): the JWKS at the verified software
	// statement's `software_jwks_endpoint`, fetched only from the directory's jwks_hosts (or
	// the SSA's embedded `software_jwks`, where its directory allows it).
	Keys *keyset.Config `json:"keys,omitempty"`
	// Leeway for clock skew on iat/exp; default 30s.
	Leeway caddy.Duration `json:"leeway,omitempty"`
	// MaxAge rejects a request whose iat is older than this; default 1h.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
	// MaxLifetime rejects a request whose exp is further than this after its iat; default 1h.
	// It also bounds how long a jti is remembered.
	MaxLifetime caddy.Duration `json:"max_lifetime,omitempty"`
	// Fetch bounds JWKS fetches, the revoked key sets' included.
	Fetch keyset.FetchConfig `json:"fetch,omitzero"`
	// RevokedKeys is how the signing key is looked up in the SSA's revoked key sets, on
	// register and update and again on every management call of the client it registered.
	RevokedKeys RevokedKeys `json:"revoked_keys,omitzero"`

	envelope envelope.Config
	revoked  revokedkeys.Config
	algs     []jwa.SignatureAlgorithm
	keys     jose.KeySource
	fetcher  *keyset.Fetcher
	logger   *zap.Logger
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
	s.envelope = s.envelopeConfig()
	s.envelope.SetDefaults()
	// The defaults show in the running config as they are applied.
	s.Algorithms = s.envelope.Algorithms
	s.Leeway = caddy.Duration(s.envelope.Leeway)
	s.MaxAge = caddy.Duration(s.envelope.MaxAge)
	s.MaxLifetime = caddy.Duration(s.envelope.MaxLifetime)
	s.revoked = s.RevokedKeys.coreConfig()
	s.revoked.SetDefaults()
	s.RevokedKeys.FailMode = s.revoked.FailMode
	s.logger = ctx.Logger()
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

// envelopeConfig is the core configuration of the module's fields.
func (s *SignedRequest) envelopeConfig() envelope.Config {
	return envelope.Config{
		Audience:    s.Audience,
		Algorithms:  s.Algorithms,
		Leeway:      time.Duration(s.Leeway),
		MaxAge:      time.Duration(s.MaxAge),
		MaxLifetime: time.Duration(s.MaxLifetime),
	}
}

// Validate checks the configuration.
func (s *SignedRequest) Validate() error {
	cfg := s.envelopeConfig()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("signed_request: %w", err)
	}
	if err := s.RevokedKeys.validate(); err != nil {
		return fmt.Errorf("signed_request: %w", err)
	}
	return nil
}

// Cleanup releases the shared fetcher.
func (s *SignedRequest) Cleanup() error {
	s.fetcher.Release()
	return nil
}

// Phase is verify_request: the request is verified with the keys of the verified SSA.
func (s *SignedRequest) Phase() dcr.Phase { return dcr.PhaseVerifyRequest }

// Protect verifies the request on register and update.
func (s *SignedRequest) Protect(ctx context.Context, x *dcr.Exchange, _ dcr.Registry) (dcr.Result, error) {
	if x.Operation != dcr.OpRegister && x.Operation != dcr.OpUpdate {
		return dcr.Result{}, nil
	}
	keys := s.keys
	fromSSA := keys == nil && (x.SoftwareStatement == nil || x.SoftwareStatement.EmbeddedKeys == nil)
	switch {
	case keys != nil:
	case x.SoftwareStatement == nil:
		return dcr.Result{}, dcr.BadSoftwareStatement("a verified software statement is required to find the request signing keys")
	case x.SoftwareStatement.EmbeddedKeys != nil:
		keys = x.SoftwareStatement.EmbeddedKeys
	default:
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
	claim, derr := s.checkEnvelope(x, hdr, claims)
	if derr != nil {
		return dcr.Result{}, derr
	}
	signer, derr := s.checkSigningKey(ctx, x, keys, hdr.Kid)
	if derr != nil {
		return dcr.Result{}, derr
	}
	return dcr.Result{RequestClaims: claims, RequestKeyID: hdr.Kid, SigningKey: signer, Once: []dcr.OnceClaim{claim}}, nil
}

// checkSigningKey names the key that verified the request and looks it up in the SSA's
// revoked key sets: a revoked key is a 400 that names it and the list; a set that cannot be
// fetched is a 503 under fail_mode hard. The key comes from the source that just verified
// with it, so the look-up is a cache hit.
func (s *SignedRequest) checkSigningKey(ctx context.Context, x *dcr.Exchange, keys jose.KeySource, kid string) (*dcr.SigningKey, *dcr.Error) {
	key, err := keys.Key(ctx, kid)
	if err != nil {
		return nil, dcr.Unavailable(err, "the request signing key is unavailable")
	}
	signer, err := signingKey(key, kid)
	if err != nil {
		return nil, dcr.BadMetadata("the request signing key %q cannot be named by its thumbprint", kid).WithCause(err)
	}
	var sets []dcr.RevokedKeySet
	if x.SoftwareStatement != nil {
		sets = x.SoftwareStatement.RevokedKeySets
	}
	signer.RevokedKeySets = sets
	out := s.checkRevoked(ctx, signer, sets)
	if derr := out.RequestError(signer); derr != nil {
		return nil, derr
	}
	return &dcr.SigningKey{RegisteredKey: signer, Revocation: out.Facts}, nil
}

// Screen refuses a register or update whose (iss, jti) was already used, before the body is
// decoded and any signature verified, with the answer of the commit's claim: a read-only
// look-up of the replay key read from the raw body (envelope.PeekReplayKey says why an
// unverified iss and jti can do no harm there). A body it cannot read is left to the
// handler's decoding and to Protect. It keeps nothing of x.Body (the key and jti are copies):
// the handler reuses the buffer of a body the screen refused once the answer is written.
func (s *SignedRequest) Screen(ctx context.Context, x *dcr.Exchange, reg dcr.Registry) error {
	if (x.Operation != dcr.OpRegister && x.Operation != dcr.OpUpdate) || len(x.Body) == 0 || reg == nil {
		return nil
	}
	key, jti, ok := envelope.PeekReplayKey(x.Body)
	if !ok {
		return nil
	}
	used, err := reg.Seen(ctx, key)
	if err != nil {
		return dcr.Unavailable(err, "the registration store is unavailable")
	}
	if used {
		return envelope.ReplayRejection(jti)
	}
	return nil
}

// checkEnvelope applies the envelope rules (dcr/envelope) to the verified request and returns
// the jti replay claim to commit.
func (s *SignedRequest) checkEnvelope(x *dcr.Exchange, hdr jose.Header, claims map[string]any) (dcr.OnceClaim, *dcr.Error) {
	env, derr := envelope.Check(&s.envelope, envelope.Input{
		Alg:    hdr.Alg,
		KeyID:  hdr.Kid,
		Claims: claims,
		SSA:    x.SoftwareStatement,
		Now:    x.Now,
	})
	if derr != nil {
		return dcr.OnceClaim{}, derr
	}
	return env.Replay, nil
}

// Interface guards
var (
	_ caddy.Provisioner  = (*SignedRequest)(nil)
	_ caddy.Validator    = (*SignedRequest)(nil)
	_ caddy.CleanerUpper = (*SignedRequest)(nil)
	_ dcr.Protection     = (*SignedRequest)(nil)
	_ dcr.Screener       = (*SignedRequest)(nil)
)

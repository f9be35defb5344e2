// Package accesstoken is the dcr.protections.access_token protection: OAuth 2.0 access tokens
// issued by the authorization server guard the DCR endpoint.
//
//   - Protect by access token (register): POST {endpoint} needs a bearer token carrying the
//     `dcr_register` scope, issued to a separate client through the client credentials grant.
//     The token is single use: a successful registration consumes it (and may revoke it at the
//     authorization server), a rejected one leaves it usable.
//   - Management by client-credentials token (OB DCR v3.2): GET/PUT/DELETE {endpoint}/{client_id}
//     accept a token the client itself obtained through the client credentials grant, with no
//     scope required, when its client equals the path client_id. A valid token sent for an
//     unknown client is revoked.
//
// Tokens are verified either as JWTs (against a JWKS, with an algorithm allow-list) or by
// RFC 7662 introspection.
package accesstoken

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/manage"
	"github.com/dcrgate/dcrgate/internal/keyset"
)

func init() {
	caddy.RegisterModule(AccessToken{})
}

// Methods of authenticating a management call (the values of Manage).
const (
	// MethodRegistrationToken is the RFC 7592 registration access token issued with the client.
	MethodRegistrationToken = manage.MethodRegistrationToken
	// MethodClientCredentials is an authorization-server token of the client itself.
	MethodClientCredentials = manage.MethodClientCredentials
)

// MaxTokenLength bounds a bearer token; real access tokens are well below it, and every byte
// is hashed, parsed or sent to the introspection endpoint.
const MaxTokenLength = 16 << 10

// AccessToken verifies the bearer tokens of DCR calls. Configure exactly one of Keys (JWT
// access tokens) and Introspection.
type AccessToken struct {
	// Issuer is the authorization server's issuer: the `iss` a JWT access token must carry
	// (required with Keys); checked in introspection answers that carry `iss`.
	Issuer string `json:"issuer,omitempty"`
	// Audience, when set, lists the values of which `aud` must name one.
	Audience []string `json:"audience,omitempty"`
	// Leeway for clock skew on exp/nbf/iat; default 30s.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// Keys verify JWT access tokens (inline, file or https URL).
	Keys *keyset.Config `json:"keys,omitempty"`
	// Algorithms allowed for JWT access tokens; default PS256, ES256 (never none or HS*).
	Algorithms []string `json:"algorithms,omitempty"`
	// Fetch bounds JWKS fetches of a key URL.
	Fetch keyset.FetchConfig `json:"fetch,omitzero"`

	// Introspection verifies tokens at an RFC 7662 endpoint.
	Introspection *Introspection `json:"introspection,omitempty"`
	// RevocationEndpoint is the RFC 7009 endpoint tokens are revoked at.
	RevocationEndpoint string `json:"revocation_endpoint,omitempty"`
	// Client is the gateway's own client at the authorization server, for introspection and
	// revocation calls.
	Client *Client `json:"client,omitempty"`

	// Register protects POST {endpoint}; nil leaves registration open to any caller the other
	// protections accept.
	Register *Register `json:"register,omitempty"`
	// Manage says, per operation (read, update, delete), which tokens authorize it:
	// registration_token, client_credentials or both. An operation not listed accepts the
	// registration access token only.
	Manage map[string][]string `json:"manage,omitempty"`
	// ClientClaim names the JWT claim that identifies the client a token was issued to:
	// client_id (default), azp or sub. Introspection answers always use client_id.
	ClientClaim string `json:"client_claim,omitempty"`

	verifier verifier
	as       *authServer
	fetcher  *keyset.Fetcher
	logger   *zap.Logger
	// ctx bounds background revocations: they end when the config is unloaded.
	ctx context.Context
}

// Register configures the protection of POST {endpoint}.
type Register struct {
	// Scopes the token must all carry; default dcr_register.
	Scopes []string `json:"scopes,omitempty"`
	// SingleUse, default true, consumes the token once a registration succeeds.
	SingleUse *bool `json:"single_use,omitempty"`
	// Revoke revokes the token at the revocation endpoint once a registration succeeded.
	Revoke bool `json:"revoke,omitempty"`
	// ConsumedTTL is how long a consumed token without `exp` is remembered; default 24h.
	// Tokens with `exp` are remembered until they expire.
	ConsumedTTL caddy.Duration `json:"consumed_ttl,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (AccessToken) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.protections.access_token",
		New: func() caddy.Module { return new(AccessToken) },
	}
}

// Provision sets defaults and opens the verifier and the authorization-server client.
func (a *AccessToken) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.ctx = ctx
	if a.Leeway == 0 {
		a.Leeway = caddy.Duration(30 * time.Second)
	}
	if a.ClientClaim == "" {
		a.ClientClaim = "client_id"
	}
	if a.Register != nil {
		if len(a.Register.Scopes) == 0 {
			a.Register.Scopes = []string{"dcr_register"}
		}
		if a.Register.SingleUse == nil {
			on := true
			a.Register.SingleUse = &on
		}
		if a.Register.ConsumedTTL == 0 {
			a.Register.ConsumedTTL = caddy.Duration(24 * time.Hour)
		}
	}
	if err := a.validateShape(); err != nil {
		return err
	}
	var err error
	if a.Introspection != nil || a.RevocationEndpoint != "" {
		if a.as, err = acquireAuthServer(ctx, a.Introspection, a.RevocationEndpoint, a.Client); err != nil {
			return fmt.Errorf("access_token: %w", err)
		}
	}
	if a.Keys != nil {
		if a.verifier, err = a.newJWTVerifier(ctx); err != nil {
			return fmt.Errorf("access_token: %w", err)
		}
	} else {
		a.verifier = &introspectionVerifier{as: a.as, issuer: a.Issuer, audience: a.Audience, leeway: time.Duration(a.Leeway)}
	}
	return nil
}

// validateShape checks what Provision needs before it opens anything.
func (a *AccessToken) validateShape() error {
	switch {
	case a.Keys != nil && a.Introspection != nil:
		return errors.New("access_token: configure either JWT keys (jwks, jwks_file, jwks_url) or introspection, not both")
	case a.Keys == nil && a.Introspection == nil:
		return errors.New("access_token: configure how tokens are verified: JWT keys (jwks, jwks_file, jwks_url) or introspection")
	case a.Keys != nil && a.Issuer == "":
		return errors.New("access_token: issuer is required to verify JWT access tokens")
	case (a.Introspection != nil || a.RevocationEndpoint != "") && a.Client == nil:
		return errors.New("access_token: introspection and revocation need the gateway's client credentials (client)")
	case a.Leeway < 0:
		return errors.New("access_token: leeway must not be negative")
	}
	if a.Register != nil {
		if a.Register.Revoke && a.RevocationEndpoint == "" {
			return errors.New("access_token: register revoke needs a revocation endpoint")
		}
		if a.Register.ConsumedTTL < 0 {
			return errors.New("access_token: register consumed_ttl must not be negative")
		}
	}
	switch a.ClientClaim {
	case "client_id", "azp", "sub":
	default:
		return fmt.Errorf("access_token: client_claim %q must be client_id, azp or sub", a.ClientClaim)
	}
	if err := manage.Methods(a.Manage).Validate(); err != nil {
		return fmt.Errorf("access_token: %w", err)
	}
	return nil
}

// Validate checks the configuration.
func (a *AccessToken) Validate() error {
	if a.Register == nil && !manage.Methods(a.Manage).AcceptsClientCredentials() {
		a.logger.Warn("access_token protects nothing: configure register, or manage with client_credentials")
	}
	return nil
}

// Cleanup releases the shared fetcher and authorization-server client.
func (a *AccessToken) Cleanup() error {
	a.fetcher.Release()
	a.as.release()
	return nil
}

// Phase is authenticate: the token says who calls.
func (a *AccessToken) Phase() dcr.Phase { return dcr.PhaseAuthenticate }

// Protect checks the bearer token of the call: the register token on register, a vote on
// the caller's token on read/update/delete.
func (a *AccessToken) Protect(ctx context.Context, x *dcr.Exchange, reg dcr.Registry) (dcr.Result, error) {
	if x.Operation == dcr.OpRegister {
		if a.Register == nil {
			return dcr.Result{}, nil
		}
		return a.protectRegister(ctx, x, reg)
	}
	return a.authorizeManagement(ctx, x)
}

// tokenFingerprint is what logs may say about a token: a prefix of its SHA-256.
func tokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:6])
}

// Interface guards
var (
	_ caddy.Provisioner  = (*AccessToken)(nil)
	_ caddy.Validator    = (*AccessToken)(nil)
	_ caddy.CleanerUpper = (*AccessToken)(nil)
	_ dcr.Protection     = (*AccessToken)(nil)
	_ dcr.Screener       = (*AccessToken)(nil)
)

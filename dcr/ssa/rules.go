package ssa

import (
	"crypto/x509"
	"encoding/json"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/jwtclaims"
	"github.com/dcrgate/dcrgate/internal/jose"
	"github.com/dcrgate/dcrgate/internal/jwks"
)

// Statement is what the claim rules check: the SSA's verified claims, the directory that
// signed it and the request's facts.
type Statement struct {
	Claims     map[string]any
	Directory  *Directory
	Now        time.Time
	ClientCert *x509.Certificate
}

// Rule is one named SSA claim rule. Check validates st and fills its part of out (the
// verified SSA being built); it returns a rejection or nil.
type Rule struct {
	Name  string
	Check func(cfg *Config, st Statement, out *dcr.SoftwareStatement) *dcr.Error
}

// Rules are run by Verify in this order, after the signature is verified. The certificate
// binding comes last: it compares the certificate with the org_id and software_id read before.
var Rules = []Rule{
	{"iat, exp, nbf, max_age", CheckTimes},
	{"software_id", CheckSoftwareID},
	{"org_id", CheckOrgID},
	{"software_roles", CheckSoftwareRoles},
	{"software_redirect_uris", CheckSoftwareRedirectURIs},
	{"software_jwks_endpoint", CheckJWKSEndpoint},
	{"revoked key sets", CheckRevokedKeySets},
	{"org_status", CheckOrgStatus},
	{"software_mode", CheckSoftwareMode},
	{"certificate_binding", CheckCertificateBinding},
}

// CheckTimes: iat is required and not in the future; with MaxAge, not older than MaxAge; exp,
// if present, is not past; nbf, if present, is not in the future. Every comparison allows
// cfg.Leeway. The check is the one every token shares (dcr/jwtclaims); the messages name the
// software statement.
func CheckTimes(cfg *Config, st Statement, _ *dcr.SoftwareStatement) *dcr.Error {
	_, terr := jwtclaims.CheckTimes(st.Claims, st.Now, jwtclaims.TimeRules{Leeway: cfg.Leeway, RequireIssuedAt: true, MaxAge: cfg.MaxAge})
	if terr == nil {
		return nil
	}
	switch terr.Problem {
	case jwtclaims.Missing, jwtclaims.Malformed:
		if terr.Claim == "iat" {
			return dcr.BadSoftwareStatement("software_statement iat is required and must be a NumericDate")
		}
		return dcr.BadSoftwareStatement("software_statement %s must be a NumericDate", terr.Claim)
	case jwtclaims.TooOld:
		return dcr.BadSoftwareStatement("software_statement was issued more than %s ago", cfg.MaxAge)
	case jwtclaims.IssuedInFuture:
		return dcr.BadSoftwareStatement("software_statement iat is in the future")
	default: // expired, not yet valid
		return dcr.BadSoftwareStatement("%s", terr.Describe("the software_statement"))
	}
}

// CheckSoftwareID: software_id is a required non-empty string.
func CheckSoftwareID(_ *Config, st Statement, out *dcr.SoftwareStatement) *dcr.Error {
	var derr *dcr.Error
	out.SoftwareID, derr = requiredString(st.Claims, "software_id")
	return derr
}

// CheckOrgID: org_id is a required non-empty string.
func CheckOrgID(_ *Config, st Statement, out *dcr.SoftwareStatement) *dcr.Error {
	var derr *dcr.Error
	out.OrgID, derr = requiredString(st.Claims, "org_id")
	return derr
}

// CheckSoftwareRoles: software_roles is a required non-empty array of strings (which scopes
// each role allows is the OB profile's rule, dcr/obprofile).
func CheckSoftwareRoles(_ *Config, st Statement, out *dcr.SoftwareStatement) *dcr.Error {
	roles, ok, err := jose.StringsClaim(st.Claims, "software_roles")
	if err != nil || !ok || len(roles) == 0 {
		return dcr.BadSoftwareStatement("software_statement claim software_roles is required and must be a non-empty array of strings")
	}
	out.Roles = roles
	return nil
}

// CheckSoftwareRedirectURIs: software_redirect_uris, if present, is an array of strings (the
// request's redirect_uris are checked against them by the OB profile).
func CheckSoftwareRedirectURIs(_ *Config, st Statement, out *dcr.SoftwareStatement) *dcr.Error {
	uris, ok, err := jose.StringsClaim(st.Claims, "software_redirect_uris")
	if err != nil {
		return dcr.BadSoftwareStatement("software_statement claim software_redirect_uris must be an array of strings")
	}
	if ok {
		out.RedirectURIs = uris
	}
	return nil
}

// CheckJWKSEndpoint: software_jwks_endpoint is a required https URL on one of the directory's
// JWKSHosts: the gateway fetches the request's keys from it, so a TPP cannot point it
// anywhere it likes. Where the directory allows embedded key sets (EmbeddedJWKS), an SSA
// without software_jwks_endpoint may carry its keys as software_jwks instead (see
// CheckEmbeddedJWKS); with both, the endpoint is used.
func CheckJWKSEndpoint(_ *Config, st Statement, out *dcr.SoftwareStatement) *dcr.Error {
	if _, present := st.Claims["software_jwks_endpoint"]; !present {
		if _, embedded := st.Claims[ClaimEmbeddedJWKS]; embedded {
			return CheckEmbeddedJWKS(st, out)
		}
	}
	uri, derr := requiredString(st.Claims, "software_jwks_endpoint")
	if derr != nil {
		return derr
	}
	if err := jwks.CheckURL(uri, st.Directory.JWKSHosts); err != nil {
		return dcr.BadSoftwareStatement("software_jwks_endpoint is not allowed for directory %q: %v", st.Directory.Issuer, err)
	}
	out.JWKSURI = uri
	return nil
}

// CheckEmbeddedJWKS: an SSA's software_jwks (a JWK Set carried in the SSA instead of a
// software_jwks_endpoint) is accepted only from a directory that allows it (EmbeddedJWKS), and
// is held to the rules of a published key set (jwks.ParseSet: public keys with kids, no
// symmetric or private keys) and to the bounds of MaxEmbeddedKeys and MaxEmbeddedRSABits. The
// request's algorithm allow-list still applies when the keys verify it.
func CheckEmbeddedJWKS(st Statement, out *dcr.SoftwareStatement) *dcr.Error {
	if !st.Directory.EmbeddedJWKS {
		return dcr.BadSoftwareStatement("directory %q does not allow an embedded software_jwks: the software statement must name a software_jwks_endpoint", st.Directory.Issuer)
	}
	raw, err := json.Marshal(st.Claims[ClaimEmbeddedJWKS])
	if err != nil {
		return dcr.BadSoftwareStatement("software_jwks is not a JSON Web Key Set")
	}
	var shape struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(raw, &shape) != nil {
		return dcr.BadSoftwareStatement("software_jwks is not a JSON Web Key Set")
	}
	if len(shape.Keys) > MaxEmbeddedKeys {
		return dcr.BadSoftwareStatement("software_jwks holds %d keys, the limit is %d", len(shape.Keys), MaxEmbeddedKeys)
	}
	set, err := jwks.ParseSet(raw)
	if err != nil {
		return dcr.BadSoftwareStatement("software_jwks is not usable: %v", err)
	}
	for i := range set.Len() {
		key, _ := set.Key(i)
		if rsaKey, ok := key.(jwk.RSAPublicKey); ok {
			if bits := new(big.Int).SetBytes(rsaKey.N()).BitLen(); bits > MaxEmbeddedRSABits {
				return dcr.BadSoftwareStatement("software_jwks key %q is RSA-%d, the limit is %d bits", clip(key.KeyID()), bits, MaxEmbeddedRSABits)
			}
		}
	}
	out.EmbeddedKeys = jwks.NewStatic(set)
	return nil
}

// CheckRevokedKeySets: software_jwks_revoked_endpoint and org_jwks_revoked_endpoint, each
// optional, are https URLs on one of the directory's JWKSHosts (the gateway fetches them,
// like the key set); they are the revoked key sets the request-signing key is looked up in
// (dcr/revokedkeys). An SSA without them names nothing to look up.
func CheckRevokedKeySets(_ *Config, st Statement, out *dcr.SoftwareStatement) *dcr.Error {
	out.RevokedKeySets = nil
	for _, name := range []string{dcr.ClaimSoftwareJWKSRevoked, dcr.ClaimOrgJWKSRevoked} {
		if _, present := st.Claims[name]; !present {
			continue
		}
		uri, derr := requiredString(st.Claims, name)
		if derr != nil {
			return derr
		}
		if err := jwks.CheckURL(uri, st.Directory.JWKSHosts); err != nil {
			return dcr.BadSoftwareStatement("%s is not allowed for directory %q: %v", name, st.Directory.Issuer, err)
		}
		out.RevokedKeySets = append(out.RevokedKeySets, dcr.RevokedKeySet{Claim: name, URL: uri})
	}
	return nil
}

// CheckOrgStatus: org_status is a required non-empty string. Which statuses may register is
// the registration policy's rule (policies/org_status.rego, data.dcr.config.org_statuses,
// default ["Active"]).
func CheckOrgStatus(_ *Config, st Statement, _ *dcr.SoftwareStatement) *dcr.Error {
	_, derr := requiredString(st.Claims, "org_status")
	return derr
}

// CheckSoftwareMode: software_mode is a required non-empty string. Which modes may register is
// the registration policy's rule (policies/software_mode.rego, data.dcr.config.software_modes
// per environment); a directory configured with the deprecated SoftwareModes also refuses the
// modes it does not list.
func CheckSoftwareMode(_ *Config, st Statement, _ *dcr.SoftwareStatement) *dcr.Error {
	mode, derr := requiredString(st.Claims, "software_mode")
	if derr != nil {
		return derr
	}
	if modes := st.Directory.SoftwareModes; len(modes) > 0 && !slices.Contains(modes, mode) {
		return dcr.UnapprovedSoftwareStatement("software_mode %q is not accepted for directory %q (accepted: %s)", clip(mode), st.Directory.Issuer, strings.Join(modes, ", "))
	}
	return nil
}

// CheckCertificateBinding makes sure the SSA belongs to the software presenting the TLS
// certificate, so a TPP cannot register with another TPP's (public) software statement: with
// BindOrgAndSoftware the certificate's organisation is org_id and its CN software_id; with
// BindOrg only the organisation must match; BindNone needs no certificate.
func CheckCertificateBinding(cfg *Config, st Statement, out *dcr.SoftwareStatement) *dcr.Error {
	if cfg.CertificateBinding == BindNone {
		return nil
	}
	if st.ClientCert == nil {
		return dcr.BadSoftwareStatement("a TLS client certificate is required to present a software statement")
	}
	org, sw := dcr.CertificateIdentity(st.ClientCert)
	if org != out.OrgID {
		return dcr.BadSoftwareStatement("the software statement's org_id %q does not match the TLS client certificate (%q)", clip(out.OrgID), clip(org))
	}
	if cfg.CertificateBinding == BindOrgAndSoftware && sw != out.SoftwareID {
		return dcr.BadSoftwareStatement("the software statement's software_id %q does not match the TLS client certificate (%q)", clip(out.SoftwareID), clip(sw))
	}
	return nil
}

// requiredString reads a claim that must be a non-empty string.
func requiredString(claims map[string]any, name string) (string, *dcr.Error) {
	v, ok, err := jose.StringClaim(claims, name)
	if err != nil || !ok || v == "" {
		return "", dcr.BadSoftwareStatement("software_statement claim %s is required and must be a non-empty string", name)
	}
	return v, nil
}

// Package obprofile applies the Open Banking UK Dynamic Client Registration v3.2 metadata
// rules (with the v3.3 CIBA additions) to a verified registration request.
//
// Apply copies the request claims, minus the JWS envelope claims (dcr.EnvelopeClaims) and
// claims whose value is JSON null (treated as omitted), into a metadata map and runs Rules in
// order. Each rule validates one claim (or a group, for CIBA), fills its default, and returns
// the first problem as a 400 *dcr.Error whose description names the claim and says what is
// wrong. A value of the wrong JSON type is an invalid_client_metadata error, never a panic.
// Normalized array claims are stored as []string (they may arrive as []any or []string);
// other claims keep their JSON-decoded types. Claims no rule knows are passed through.
//
// Decisions where the OB specification leaves room (also documented on each rule):
//
//   - id_token_signed_response_alg is required by default (RequireIDTokenSignedResponseAlg
//     defaults to true) because the OB DCR v3.2 claim table marks it 1..1; a deployment that
//     must accept clients omitting it can set the option to false.
//   - token_endpoint_auth_signing_alg is refused unless the method is private_key_jwt or
//     client_secret_jwt: for other methods it means nothing and usually reveals a client that
//     is confused about how it will authenticate. private_key_jwt uses SigningAlgs;
//     client_secret_jwt uses HS256, HS384 or HS512, the only place HMAC algorithms are accepted.
//   - response_types is refused when grant_types lacks authorization_code (the client could
//     never use it) and defaults to DefaultResponseTypes when it has it. The tokens of a
//     response type are compared as a set ("id_token code" is "code id_token").
//   - redirect_uris must each appear in the SSA's software_redirect_uris; an SSA without any
//     therefore allows none (fail closed). When the request omits redirect_uris, the SSA's
//     set is registered, after the same checks.
//   - scope is sorted and de-duplicated; when omitted it is every scope the SSA's roles allow.
//     Roles are matched case-insensitively against RoleScopes.
//   - application_type defaults to the first of ApplicationTypes ("web" by default).
//   - tls_client_auth_subject_dn is stored as the client wrote it (after checking it matches
//     the certificate with package dn), so the authorization server sees the client's value.
//     Its OB DCR v3.1 name tls_client_auth_dn is accepted and registered under the v3.2 name
//     (both sent: the values must be equal); SentNames tells the responses which name to use.
//   - For CIBA both backchannel_user_code_parameter (the CIBA client metadata name) and
//     backchannel_user_code_parameter_supported are accepted and must be false.
package obprofile

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Names used by the profile.
const (
	AuthTLSClientAuth     = "tls_client_auth"
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthClientSecretJWT   = "client_secret_jwt"

	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantCIBA              = "urn:openid:params:grant-type:ciba"
)

// Config holds the values a deployment accepts. Empty fields take the defaults listed; the
// zero Config is the OB default profile.
type Config struct {
	// AuthMethods are the accepted token_endpoint_auth_method values. Default tls_client_auth,
	// private_key_jwt (the FAPI ones); client_secret_basic, client_secret_post and
	// client_secret_jwt may be added.
	AuthMethods []string `json:"token_endpoint_auth_methods,omitempty"`
	// SigningAlgs are the accepted JWS algorithms for every *_alg claim except
	// token_endpoint_auth_signing_alg with client_secret_jwt. Default PS256, ES256. "none" and
	// HS* are refused by Validate. (signing_algs is the previous release's name.)
	SigningAlgs []string `json:"algorithms,omitempty"`
	// GrantTypes are the accepted grant_types. Default authorization_code, client_credentials,
	// refresh_token, urn:openid:params:grant-type:ciba.
	GrantTypes []string `json:"grant_types,omitempty"`
	// ResponseTypes are the accepted response_types. Default "code", "code id_token".
	ResponseTypes []string `json:"response_types,omitempty"`
	// DefaultResponseTypes are registered when the client uses authorization_code and sends
	// no response_types. Default ["code id_token"], as the OB claim table says.
	DefaultResponseTypes []string `json:"default_response_types,omitempty"`
	// ApplicationTypes are the accepted application_type values; the first is the default.
	// Default web, mobile.
	ApplicationTypes []string `json:"application_types,omitempty"`
	// Scopes are every scope a client may register. Default openid, accounts, payments,
	// fundsconfirmations.
	Scopes []string `json:"scopes,omitempty"`
	// RoleScopes maps an SSA software_role to the scopes it allows: the one home of roles →
	// scopes (the registration policy sees the outcome, input.metadata.scope, and keeps no
	// mapping of its own; docs/policies.md "Who owns which rule"). Defaults AISP: accounts,
	// PISP: payments, CBPII: fundsconfirmations. Merged per role: a configured role replaces
	// that role's default (roles match case-insensitively) and the other defaults stay, each
	// narrowed to Scopes; a role configured with no scopes allows none.
	RoleScopes map[string][]string `json:"role_scopes,omitempty"`
	// AlwaysAllowedScopes are allowed whatever the roles. Default openid.
	AlwaysAllowedScopes []string `json:"always_allowed_scopes,omitempty"`
	// RequireIDTokenSignedResponseAlg makes id_token_signed_response_alg mandatory. Default
	// true (nil means true), because OB DCR v3.2 lists the claim as 1..1.
	RequireIDTokenSignedResponseAlg *bool `json:"require_id_token_signed_response_alg,omitempty"`
	// MaxRedirectURILength is the longest redirect URI accepted, in bytes. Default 256, the
	// size in the OB claim table.
	MaxRedirectURILength int `json:"max_redirect_uri_length,omitempty"`
}

// DefaultRoleScopes are the role_scopes every configuration starts from (see RoleScopes).
func DefaultRoleScopes() map[string][]string {
	return map[string][]string{
		"AISP":  {"accounts"},
		"PISP":  {"payments"},
		"CBPII": {"fundsconfirmations"},
	}
}

// SetDefaults fills every empty field with its default, and RoleScopes' missing roles with
// theirs. It never changes a set value (RoleScopes is replaced by a merged copy, so a Config
// copied before SetDefaults keeps its own map).
func (c *Config) SetDefaults() {
	if len(c.AuthMethods) == 0 {
		c.AuthMethods = []string{AuthTLSClientAuth, AuthPrivateKeyJWT}
	}
	if len(c.SigningAlgs) == 0 {
		c.SigningAlgs = []string{"PS256", "ES256"}
	}
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{GrantAuthorizationCode, GrantClientCredentials, GrantRefreshToken, GrantCIBA}
	}
	if len(c.ResponseTypes) == 0 {
		c.ResponseTypes = []string{"code", "code id_token"}
	}
	if len(c.DefaultResponseTypes) == 0 {
		c.DefaultResponseTypes = []string{"code id_token"}
	}
	if len(c.ApplicationTypes) == 0 {
		c.ApplicationTypes = []string{"web", "mobile"}
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "accounts", "payments", "fundsconfirmations"}
	}
	c.RoleScopes = mergeRoleScopes(c.RoleScopes, DefaultRoleScopes(), c.Scopes)
	if len(c.AlwaysAllowedScopes) == 0 {
		c.AlwaysAllowedScopes = []string{"openid"}
	}
	if c.RequireIDTokenSignedResponseAlg == nil {
		t := true
		c.RequireIDTokenSignedResponseAlg = &t
	}
	if c.MaxRedirectURILength == 0 {
		c.MaxRedirectURILength = 256
	}
}

// defaultRoles are the roles of DefaultRoleScopes.
var defaultRoles = []string{"AISP", "PISP", "CBPII"}

// complete reports whether c is as SetDefaults leaves it: every field set and every default
// role named in RoleScopes, so that SetDefaults would change nothing but the identity of the
// RoleScopes map (Apply then uses c as it is).
func (c *Config) complete() bool {
	if len(c.AuthMethods) == 0 || len(c.SigningAlgs) == 0 || len(c.GrantTypes) == 0 || len(c.ResponseTypes) == 0 ||
		len(c.DefaultResponseTypes) == 0 || len(c.ApplicationTypes) == 0 || len(c.Scopes) == 0 ||
		len(c.AlwaysAllowedScopes) == 0 || c.RequireIDTokenSignedResponseAlg == nil || c.MaxRedirectURILength == 0 {
		return false
	}
	for _, d := range defaultRoles {
		named := false
		for r := range c.RoleScopes {
			if strings.EqualFold(r, d) {
				named = true
				break
			}
		}
		if !named {
			return false
		}
	}
	return true
}

// mergeRoleScopes returns a new map with the roles of set and every role of defaults that set
// does not name (compared case-insensitively, as roles are matched). A default role keeps
// only the scopes among offered: a deployment that offers fewer scopes narrows the defaults
// with it (a configured role must name offered scopes, as Validate checks).
func mergeRoleScopes(set, defaults map[string][]string, offered []string) map[string][]string {
	out := make(map[string][]string, len(set)+len(defaults))
	for r, scopes := range set {
		out[r] = scopes
	}
defaults:
	for r, scopes := range defaults {
		for s := range set {
			if strings.EqualFold(s, r) {
				continue defaults
			}
		}
		kept := []string{}
		for _, sc := range scopes {
			if slices.Contains(offered, sc) {
				kept = append(kept, sc)
			}
		}
		out[r] = kept
	}
	return out
}

// requireIDTokenAlg reads RequireIDTokenSignedResponseAlg with its default.
func (c *Config) requireIDTokenAlg() bool {
	return c.RequireIDTokenSignedResponseAlg == nil || *c.RequireIDTokenSignedResponseAlg
}

var (
	knownAuthMethods      = []string{AuthTLSClientAuth, AuthPrivateKeyJWT, AuthClientSecretBasic, AuthClientSecretPost, AuthClientSecretJWT}
	knownSigningAlgs      = []string{"PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "EdDSA"}
	hmacAlgs              = []string{"HS256", "HS384", "HS512"}
	knownGrantTypes       = []string{GrantAuthorizationCode, GrantClientCredentials, GrantRefreshToken, GrantCIBA}
	knownResponseTypes    = []string{"code", "code id_token"}
	knownApplicationTypes = []string{"web", "mobile", "native"}
)

// Validate reports a configuration that could not work or would weaken the profile. It checks
// c as SetDefaults would complete it, without changing c.
func (c *Config) Validate() error {
	d := *c
	d.SetDefaults()
	if err := checkList("token_endpoint_auth_methods", d.AuthMethods, knownAuthMethods); err != nil {
		return err
	}
	for _, a := range d.SigningAlgs {
		switch {
		case strings.EqualFold(a, "none"):
			return fmt.Errorf("algorithms: %q is refused: registrations must use signed JWTs", a)
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			return fmt.Errorf("algorithms: %q is refused: HMAC algorithms are only accepted for client_secret_jwt, which uses HS256/HS384/HS512 on its own", a)
		}
	}
	if err := checkList("algorithms", d.SigningAlgs, knownSigningAlgs); err != nil {
		return err
	}
	if err := checkList("grant_types", d.GrantTypes, knownGrantTypes); err != nil {
		return err
	}
	rts := normalizeResponseTypes(d.ResponseTypes)
	if err := checkList("response_types", rts, knownResponseTypes); err != nil {
		return err
	}
	if err := checkList("default_response_types", normalizeResponseTypes(d.DefaultResponseTypes), rts); err != nil {
		return err
	}
	if err := checkList("application_types", d.ApplicationTypes, knownApplicationTypes); err != nil {
		return err
	}
	for _, s := range d.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n\"\\") {
			return fmt.Errorf("scopes: %q is not a valid scope token", s)
		}
	}
	if err := checkList("scopes", d.Scopes, d.Scopes); err != nil {
		return err
	}
	roles := make([]string, 0, len(d.RoleScopes))
	for r := range d.RoleScopes {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for i, r := range roles {
		for _, other := range roles[:i] {
			if strings.EqualFold(r, other) {
				return fmt.Errorf("role_scopes: %q and %q name the same role (roles are matched case-insensitively)", other, r)
			}
		}
		if err := checkList("role_scopes["+r+"]", d.RoleScopes[r], d.Scopes); err != nil {
			return err
		}
	}
	if err := checkList("always_allowed_scopes", d.AlwaysAllowedScopes, d.Scopes); err != nil {
		return err
	}
	if d.MaxRedirectURILength < 0 {
		return fmt.Errorf("max_redirect_uri_length: %d is negative", d.MaxRedirectURILength)
	}
	return nil
}

// checkList checks that every item of list is in allowed, once.
func checkList(field string, list, allowed []string) error {
	seen := make(map[string]bool, len(list))
	for _, v := range list {
		if !slices.Contains(allowed, v) {
			return fmt.Errorf("%s: %q is not one of %s", field, v, strings.Join(allowed, ", "))
		}
		if seen[v] {
			return fmt.Errorf("%s: %q is listed twice", field, v)
		}
		seen[v] = true
	}
	return nil
}

// normalizeResponseTypes sorts the tokens of each response type: OAuth 2.0 Multiple Response
// Types makes their order meaningless.
func normalizeResponseTypes(rts []string) []string {
	out := make([]string, len(rts))
	for i, rt := range rts {
		out[i] = normalizeResponseType(rt)
	}
	return out
}

func normalizeResponseType(rt string) string {
	if isNormalResponseType(rt) {
		return rt
	}
	f := strings.Fields(rt)
	sort.Strings(f)
	return strings.Join(f, " ")
}

// isNormalResponseType reports whether rt is already what normalizeResponseType makes of it:
// ASCII tokens in sorted order, separated by single spaces, none before or after them (the
// case of every configured value and of what clients send).
func isNormalResponseType(rt string) bool {
	prev, start := "", 0
	for i := 0; i <= len(rt); i++ {
		if i < len(rt) {
			c := rt[i]
			if c >= utf8.RuneSelf || (c != ' ' && asciiSpace(c)) {
				return false
			}
			if c != ' ' {
				continue
			}
		}
		tok := rt[start:i]
		if tok == "" || (start > 0 && tok < prev) {
			return false
		}
		prev, start = tok, i+1
	}
	return true
}

// asciiSpace is unicode.IsSpace of an ASCII byte, as strings.Fields reads it.
func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

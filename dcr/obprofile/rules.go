package obprofile

import (
	"crypto/x509"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/dn"
)

// Input is what the rules check the request against.
type Input struct {
	// Claims are the verified request claims, as decoded from JSON (strings, []any, float64 or
	// json.Number, bool, map[string]any).
	Claims map[string]any
	// SSA is the verified software statement (RedirectURIs, Roles and SoftwareID filled).
	SSA *dcr.SoftwareStatement
	// ClientCert is the TLS client certificate, nil if none was presented.
	ClientCert *x509.Certificate
}

// Rule is one named OB metadata rule. Check validates md (the metadata being built) and
// normalizes it in place, filling defaults; it returns a rejection or nil.
type Rule struct {
	Name  string
	Check func(cfg *Config, in Input, md map[string]any) *dcr.Error
}

// Rules are run by Apply in this order. Later rules rely on earlier ones: the auth method
// comes before the rules that depend on it, and grant_types before response_types,
// redirect_uris and CIBA.
var Rules = []Rule{
	{"software_id", CheckSoftwareID},
	{"token_endpoint_auth_method", CheckTokenEndpointAuthMethod},
	{"v3.1 names", CheckV31Names},
	{"tls_client_auth_subject_dn", CheckTLSClientAuthSubjectDN},
	{"token_endpoint_auth_signing_alg", CheckTokenEndpointAuthSigningAlg},
	{"id_token_signed_response_alg", CheckIDTokenSignedResponseAlg},
	{"request_object_signing_alg", CheckRequestObjectSigningAlg},
	{"grant_types", CheckGrantTypes},
	{"response_types", CheckResponseTypes},
	{"redirect_uris", CheckRedirectURIs},
	{"application_type", CheckApplicationType},
	{"scope", CheckScope},
	{"ciba", CheckCIBA},
}

// Apply builds the metadata to register from in.Claims: the claims minus dcr.EnvelopeClaims
// and null values, checked and normalized by every rule in Rules. cfg may be nil (the
// defaults); it is not modified. The first rejection is returned.
func Apply(cfg *Config, in Input) (map[string]any, *dcr.Error) {
	c := cfg
	if c == nil || !c.complete() {
		// The handler's profile was completed at provision; anything else is completed here,
		// in a copy.
		c = new(Config)
		if cfg != nil {
			*c = *cfg
		}
		c.SetDefaults()
	}
	if in.SSA == nil {
		// A pipeline that calls Apply before the SSA is verified is misconfigured.
		return nil, &dcr.Error{Status: http.StatusInternalServerError, Code: dcr.CodeServerError,
			Description: "the software statement was not verified before the OB profile rules"}
	}
	md := make(map[string]any, len(in.Claims))
	for k, v := range in.Claims {
		if v == nil || slices.Contains(dcr.EnvelopeClaims, k) {
			continue
		}
		md[k] = v
	}
	for _, r := range Rules {
		if err := r.Check(c, in, md); err != nil {
			return nil, err
		}
	}
	return md, nil
}

// CheckSoftwareID: software_id, if sent, must equal the SSA's; the SSA's is registered.
func CheckSoftwareID(_ *Config, in Input, md map[string]any) *dcr.Error {
	want := in.SSA.SoftwareID
	if want == "" {
		return dcr.BadSoftwareStatement("the software statement has no software_id")
	}
	got, ok, err := stringClaim(md, "software_id")
	if err != nil {
		return err
	}
	if ok && got != want {
		return dcr.BadMetadata("software_id %s does not match the software statement's software_id %s", quote(got), quote(want))
	}
	md["software_id"] = want
	return nil
}

// CheckTokenEndpointAuthMethod: token_endpoint_auth_method is required and must be one of
// cfg.AuthMethods.
func CheckTokenEndpointAuthMethod(cfg *Config, _ Input, md map[string]any) *dcr.Error {
	m, ok, err := stringClaim(md, "token_endpoint_auth_method")
	if err != nil {
		return err
	}
	if !ok || m == "" {
		return dcr.BadMetadata("token_endpoint_auth_method is required (one of %s)", strings.Join(cfg.AuthMethods, ", "))
	}
	if !slices.Contains(cfg.AuthMethods, m) {
		return dcr.BadMetadata("token_endpoint_auth_method %s is not supported (supported: %s)", quote(m), strings.Join(cfg.AuthMethods, ", "))
	}
	return nil
}

// CheckTLSClientAuthSubjectDN: tls_client_auth_subject_dn is required with tls_client_auth and
// refused with any other method; it must name the subject of the TLS client certificate the
// request came with (compared with package dn), so that a client can only bind itself to a
// certificate it holds. Messages name the claim as the client sent it (tls_client_auth_dn
// for an OB DCR v3.1 client, see CheckV31Names).
func CheckTLSClientAuthSubjectDN(_ *Config, in Input, md map[string]any) *dcr.Error {
	s, ok, err := stringClaim(md, "tls_client_auth_subject_dn")
	if err != nil {
		return err
	}
	name := sentAs(in, "tls_client_auth_subject_dn")
	method := authMethod(md)
	if method != AuthTLSClientAuth {
		if ok {
			return dcr.BadMetadata("%s is only allowed with token_endpoint_auth_method tls_client_auth, not %s", name, quote(method))
		}
		return nil
	}
	if !ok || strings.TrimSpace(s) == "" {
		return dcr.BadMetadata("%s is required with token_endpoint_auth_method tls_client_auth", name)
	}
	if in.ClientCert == nil {
		return dcr.BadMetadata("%s cannot be checked: a TLS client certificate is required with tls_client_auth", name)
	}
	match, perr := dn.MatchCertificate(s, in.ClientCert)
	if perr != nil {
		return dcr.BadMetadata("%s %s is not a valid distinguished name: %s", name, quote(s), strings.TrimPrefix(perr.Error(), "dn: "))
	}
	if !match {
		return dcr.BadMetadata("%s %s does not match the subject of the TLS client certificate (%s)", name, quote(s), dn.FromCertificate(in.ClientCert))
	}
	return nil
}

// CheckTokenEndpointAuthSigningAlg: required with private_key_jwt (one of cfg.SigningAlgs) and
// client_secret_jwt (HS256, HS384 or HS512, the only HMAC use accepted); refused with any
// other method, where it would mean nothing.
func CheckTokenEndpointAuthSigningAlg(cfg *Config, _ Input, md map[string]any) *dcr.Error {
	const name = "token_endpoint_auth_signing_alg"
	alg, ok, err := stringClaim(md, name)
	if err != nil {
		return err
	}
	method := authMethod(md)
	var allowed []string
	switch method {
	case AuthPrivateKeyJWT:
		allowed = cfg.SigningAlgs
	case AuthClientSecretJWT:
		allowed = hmacAlgs
	default:
		if ok {
			return dcr.BadMetadata("%s is only allowed with token_endpoint_auth_method private_key_jwt or client_secret_jwt, not %s", name, quote(method))
		}
		return nil
	}
	if !ok || alg == "" {
		return dcr.BadMetadata("%s is required with token_endpoint_auth_method %s (one of %s)", name, method, strings.Join(allowed, ", "))
	}
	if !slices.Contains(allowed, alg) {
		return dcr.BadMetadata("%s %s is not supported with %s (supported: %s)", name, quote(alg), method, strings.Join(allowed, ", "))
	}
	return nil
}

// CheckIDTokenSignedResponseAlg: id_token_signed_response_alg must be one of cfg.SigningAlgs;
// it is required unless cfg.RequireIDTokenSignedResponseAlg is false (OB v3.2 lists it 1..1).
func CheckIDTokenSignedResponseAlg(cfg *Config, _ Input, md map[string]any) *dcr.Error {
	return checkAlg(cfg, md, "id_token_signed_response_alg", cfg.requireIDTokenAlg())
}

// CheckRequestObjectSigningAlg: request_object_signing_alg, if sent, must be one of
// cfg.SigningAlgs ("none" never is, so unsigned request objects cannot be registered).
func CheckRequestObjectSigningAlg(cfg *Config, _ Input, md map[string]any) *dcr.Error {
	return checkAlg(cfg, md, "request_object_signing_alg", false)
}

func checkAlg(cfg *Config, md map[string]any, name string, required bool) *dcr.Error {
	alg, ok, err := stringClaim(md, name)
	if err != nil {
		return err
	}
	if !ok {
		if required {
			return dcr.BadMetadata("%s is required (one of %s)", name, strings.Join(cfg.SigningAlgs, ", "))
		}
		return nil
	}
	if !slices.Contains(cfg.SigningAlgs, alg) {
		return dcr.BadMetadata("%s %s is not supported (supported: %s)", name, quote(alg), strings.Join(cfg.SigningAlgs, ", "))
	}
	return nil
}

// CheckGrantTypes: grant_types is a non-empty array of distinct values from cfg.GrantTypes;
// default ["authorization_code"].
func CheckGrantTypes(cfg *Config, _ Input, md map[string]any) *dcr.Error {
	const name = "grant_types"
	gts, ok, err := stringArrayClaim(md, name)
	if err != nil {
		return err
	}
	if !ok {
		md[name] = []string{GrantAuthorizationCode}
		return nil
	}
	if len(gts) == 0 {
		return dcr.BadMetadata("%s must not be empty", name)
	}
	for i, gt := range gts {
		if !slices.Contains(cfg.GrantTypes, gt) {
			return dcr.BadMetadata("%s[%d] %s is not supported (supported: %s)", name, i, quote(gt), strings.Join(cfg.GrantTypes, ", "))
		}
		if slices.Contains(gts[:i], gt) {
			return dcr.BadMetadata("%s[%d] %s is listed twice", name, i, quote(gt))
		}
	}
	md[name] = slices.Clone(gts)
	return nil
}

// CheckResponseTypes: with the authorization_code grant, response_types is a non-empty array
// of distinct values from cfg.ResponseTypes (default cfg.DefaultResponseTypes); without it,
// response_types is refused, since the client could never use the authorization endpoint.
// Values are stored with their tokens sorted.
func CheckResponseTypes(cfg *Config, _ Input, md map[string]any) *dcr.Error {
	const name = "response_types"
	rts, ok, err := stringArrayClaim(md, name)
	if err != nil {
		return err
	}
	if !slices.Contains(grantTypes(md), GrantAuthorizationCode) {
		if ok && len(rts) > 0 {
			return dcr.BadMetadata("%s is only allowed with the authorization_code grant type", name)
		}
		delete(md, name)
		return nil
	}
	if !ok {
		md[name] = normalizeResponseTypes(cfg.DefaultResponseTypes)
		return nil
	}
	if len(rts) == 0 {
		return dcr.BadMetadata("%s must not be empty with the authorization_code grant type", name)
	}
	allowed := normalizeResponseTypes(cfg.ResponseTypes)
	out := make([]string, len(rts))
	for i, rt := range rts {
		n := normalizeResponseType(rt)
		if !slices.Contains(allowed, n) {
			return dcr.BadMetadata("%s[%d] %s is not supported (supported: %s)", name, i, quote(rt), strings.Join(quoteAll(cfg.ResponseTypes), ", "))
		}
		if slices.Contains(out[:i], n) {
			return dcr.BadMetadata("%s[%d] %s is listed twice", name, i, quote(rt))
		}
		out[i] = n
	}
	md[name] = out
	return nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = quote(s)
	}
	return out
}

// CheckRedirectURIs: redirect_uris is an array of distinct absolute https URLs, without a
// fragment or user info, whose host is not localhost, a loopback or unspecified IP, no longer
// than cfg.MaxRedirectURILength, each listed verbatim in the SSA's software_redirect_uris.
// Omitted, the SSA's URIs are registered (checked the same way); it is an error for a client
// that uses authorization_code to end up with none. Problems with a URI are
// invalid_redirect_uri; a value of the wrong JSON type is invalid_client_metadata.
func CheckRedirectURIs(cfg *Config, in Input, md map[string]any) *dcr.Error {
	const name = "redirect_uris"
	uris, ok, err := stringArrayClaim(md, name)
	if err != nil {
		// A wrong JSON type is malformed metadata, like for every other claim.
		return err
	}
	needsRedirect := slices.Contains(grantTypes(md), GrantAuthorizationCode)
	if !ok {
		if len(in.SSA.RedirectURIs) == 0 {
			if needsRedirect {
				return dcr.BadRedirectURI("%s is required: the authorization_code grant needs one and the software statement has no software_redirect_uris", name)
			}
			return nil
		}
		for i, u := range in.SSA.RedirectURIs {
			if msg := redirectURIProblem(u, cfg.MaxRedirectURILength); msg != "" {
				return dcr.BadRedirectURI("software_redirect_uris[%d] %s of the software statement %s; send redirect_uris with the ones to register", i, quote(u), msg)
			}
		}
		md[name] = slices.Clone(in.SSA.RedirectURIs)
		return nil
	}
	if len(uris) == 0 {
		if needsRedirect {
			return dcr.BadRedirectURI("%s must not be empty with the authorization_code grant type", name)
		}
		md[name] = []string{}
		return nil
	}
	for i, u := range uris {
		if msg := redirectURIProblem(u, cfg.MaxRedirectURILength); msg != "" {
			return dcr.BadRedirectURI("%s[%d] %s %s", name, i, quote(u), msg)
		}
		if slices.Contains(uris[:i], u) {
			return dcr.BadRedirectURI("%s[%d] %s is listed twice", name, i, quote(u))
		}
		if !slices.Contains(in.SSA.RedirectURIs, u) {
			return dcr.BadRedirectURI("%s[%d] %s is not one of the software statement's software_redirect_uris", name, i, quote(u))
		}
	}
	md[name] = slices.Clone(uris)
	return nil
}

// redirectURIProblem says what is wrong with a redirect URI ("" if nothing), phrased to follow
// the quoted URI.
func redirectURIProblem(raw string, maxLen int) string {
	if len(raw) > maxLen {
		return "is longer than " + strconv.Itoa(maxLen) + " bytes"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "is not a valid URL"
	}
	return httpsURLProblem(u, raw)
}

// httpsURLProblem checks the rules shared by redirect URIs and the CIBA notification
// endpoint: absolute https, a real remote host, no fragment, no user info.
func httpsURLProblem(u *url.URL, raw string) string {
	switch {
	case !u.IsAbs():
		return "is not an absolute URL"
	case u.Scheme != "https":
		return "must use https"
	case u.Opaque != "":
		return "is not a hierarchical https URL"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not have a fragment"
	case u.User != nil:
		return "must not contain user information"
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" {
		return "has no host"
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "must not use localhost"
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsUnspecified()) {
		return "must not use a loopback address"
	}
	return ""
}

// CheckApplicationType: application_type is one of cfg.ApplicationTypes; default the first.
func CheckApplicationType(cfg *Config, _ Input, md map[string]any) *dcr.Error {
	const name = "application_type"
	at, ok, err := stringClaim(md, name)
	if err != nil {
		return err
	}
	if !ok {
		md[name] = cfg.ApplicationTypes[0]
		return nil
	}
	if !slices.Contains(cfg.ApplicationTypes, at) {
		return dcr.BadMetadata("%s %s is not supported (supported: %s)", name, quote(at), strings.Join(cfg.ApplicationTypes, ", "))
	}
	return nil
}

// CheckScope: scope is a space-separated list; every scope must be in cfg.Scopes and allowed
// by the SSA's software_roles (cfg.RoleScopes) or in cfg.AlwaysAllowedScopes. The registered
// value is sorted and de-duplicated; omitted, it is every scope the roles allow.
func CheckScope(cfg *Config, in Input, md map[string]any) *dcr.Error {
	const name = "scope"
	s, ok, err := stringClaim(md, name)
	if err != nil {
		return err
	}
	allowed := allowedScopes(cfg, in.SSA.Roles)
	if !ok {
		if len(allowed) == 0 {
			return dcr.BadMetadata("the software statement's software_roles (%s) allow no scope", strings.Join(in.SSA.Roles, ", "))
		}
		md[name] = strings.Join(allowed, " ")
		return nil
	}
	requested := strings.Fields(s)
	if len(requested) == 0 {
		return dcr.BadMetadata("%s is empty", name)
	}
	var out []string
	for _, sc := range requested {
		if !slices.Contains(cfg.Scopes, sc) {
			return dcr.BadMetadata("%s %s is not supported (supported: %s)", name, quote(sc), strings.Join(cfg.Scopes, " "))
		}
		if !slices.Contains(allowed, sc) {
			return dcr.BadMetadata("%s %s is not allowed by the software statement's software_roles (%s)", name, quote(sc), strings.Join(in.SSA.Roles, ", "))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	sort.Strings(out)
	md[name] = strings.Join(out, " ")
	return nil
}

// allowedScopes returns the sorted scopes of cfg.Scopes that roles (matched case-insensitively)
// or cfg.AlwaysAllowedScopes allow.
func allowedScopes(cfg *Config, roles []string) []string {
	var held [8][]string // the scopes of the roles held: a role or two
	granted := held[:0]
	for role, scopes := range cfg.RoleScopes {
		for _, r := range roles {
			if strings.EqualFold(role, r) {
				granted = append(granted, scopes)
				break
			}
		}
	}
	var out []string
	for _, s := range cfg.Scopes {
		if slices.Contains(out, s) {
			continue
		}
		ok := slices.Contains(cfg.AlwaysAllowedScopes, s)
		for _, g := range granted {
			if ok {
				break
			}
			ok = slices.Contains(g, s)
		}
		if ok {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// CIBA client metadata (OpenID CIBA Core §4, OB DCR v3.3).
const (
	claimCIBADeliveryMode      = "backchannel_token_delivery_mode"
	claimCIBANotification      = "backchannel_client_notification_endpoint"
	claimCIBASigningAlg        = "backchannel_authentication_request_signing_alg"
	claimCIBAUserCode          = "backchannel_user_code_parameter"
	claimCIBAUserCodeSupported = "backchannel_user_code_parameter_supported"
	deliveryModePoll           = "poll"
	deliveryModePing           = "ping"
	deliveryModePush           = "push"
)

var cibaClaims = []string{claimCIBADeliveryMode, claimCIBANotification, claimCIBASigningAlg, claimCIBAUserCode, claimCIBAUserCodeSupported}

// CheckCIBA: with the CIBA grant, backchannel_token_delivery_mode is required and is poll or
// ping (OB refuses push); backchannel_client_notification_endpoint is required, and an https
// URL to a remote host, with ping and refused with poll;
// backchannel_authentication_request_signing_alg, if sent, is one of cfg.SigningAlgs;
// backchannel_user_code_parameter(_supported), if sent, is false. Without the CIBA grant every
// CIBA claim is refused.
func CheckCIBA(cfg *Config, _ Input, md map[string]any) *dcr.Error {
	if !slices.Contains(grantTypes(md), GrantCIBA) {
		for _, c := range cibaClaims {
			if _, ok := md[c]; ok {
				return dcr.BadMetadata("%s is only allowed with the grant type %s", c, GrantCIBA)
			}
		}
		return nil
	}
	mode, ok, err := stringClaim(md, claimCIBADeliveryMode)
	if err != nil {
		return err
	}
	switch {
	case !ok || mode == "":
		return dcr.BadMetadata("%s is required with the grant type %s (poll or ping)", claimCIBADeliveryMode, GrantCIBA)
	case mode == deliveryModePush:
		return dcr.BadMetadata("%s push is not allowed by the OB profile (use poll or ping)", claimCIBADeliveryMode)
	case mode != deliveryModePoll && mode != deliveryModePing:
		return dcr.BadMetadata("%s %s is not supported (poll or ping)", claimCIBADeliveryMode, quote(mode))
	}
	endpoint, ok, err := stringClaim(md, claimCIBANotification)
	if err != nil {
		return err
	}
	if mode == deliveryModePing {
		if !ok || endpoint == "" {
			return dcr.BadMetadata("%s is required with %s ping", claimCIBANotification, claimCIBADeliveryMode)
		}
		u, perr := url.Parse(endpoint)
		if perr != nil {
			return dcr.BadMetadata("%s %s is not a valid URL", claimCIBANotification, quote(endpoint))
		}
		if msg := httpsURLProblem(u, endpoint); msg != "" {
			return dcr.BadMetadata("%s %s %s", claimCIBANotification, quote(endpoint), msg)
		}
	} else if ok {
		return dcr.BadMetadata("%s is only allowed with %s ping, not poll", claimCIBANotification, claimCIBADeliveryMode)
	}
	if err := checkAlg(cfg, md, claimCIBASigningAlg, false); err != nil {
		return err
	}
	for _, c := range []string{claimCIBAUserCode, claimCIBAUserCodeSupported} {
		v, ok, err := boolClaim(md, c)
		if err != nil {
			return err
		}
		if ok && v {
			return dcr.BadMetadata("%s must be false: the OB profile does not support user codes", c)
		}
	}
	return nil
}

package conformance

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"
)

// Spec is an OB DCR version whose data dictionary a response is checked against.
type Spec string

// The versions the tool tests.
const (
	Spec32 Spec = "3.2"
	Spec33 Spec = "3.3"
)

// GrantCIBA is the CIBA grant type, in grant_types from OB DCR v3.3.
const GrantCIBA = "urn:openid:params:grant-type:ciba"

var (
	authMethods   = []string{"private_key_jwt", "client_secret_jwt", "client_secret_basic", "client_secret_post", "tls_client_auth"}
	grantTypes32  = []string{"authorization_code", "client_credentials", "refresh_token"}
	grantTypes33  = append(append([]string(nil), grantTypes32...), GrantCIBA)
	responseTypes = []string{"code", "code id_token"}
	// software_id: Max22Text, the directory's base62 identifiers (as the tool checks it).
	softwareIDPattern = regexp.MustCompile(`^[0-9a-zA-Z]{1,22}$`)
)

// CheckRegistration checks a registration answer (201 of POST, 200 of GET and PUT) against
// the OB DCR data dictionary of spec (OBClientRegistration1 as returned), as the tool's
// response validator does, and returns every failure found (none: the answer conforms):
//
//   - client_id: required, 1..36 characters; client_secret: 1..36 characters;
//     client_id_issued_at, client_secret_expires_at: integers ≥ 0;
//   - redirect_uris: required, each 1..256 characters, https, no localhost or loopback,
//     no fragment;
//   - token_endpoint_auth_method: required, one of the OB methods;
//     token_endpoint_auth_signing_alg required with *_jwt, tls_client_auth_subject_dn
//     (1..128 characters) required with tls_client_auth;
//   - grant_types: required, within authorization_code, client_credentials, refresh_token
//     (and the CIBA grant from 3.3); response_types within code, code id_token;
//   - software_id: 1..22 base62 characters; scope: required, 1..256 characters;
//     software_statement: required, a compact JWS; application_type: required, web or mobile;
//   - id_token_signed_response_alg, request_object_signing_alg: required, 1..5 characters;
//     token_endpoint_auth_signing_alg: 1..5 characters;
//   - 3.3, with the CIBA grant: backchannel_token_delivery_mode poll or ping,
//     backchannel_client_notification_endpoint an https URL with ping,
//     backchannel_authentication_request_signing_alg 1..5 characters,
//     backchannel_user_code_parameter_supported a boolean.
func CheckRegistration(spec Spec, body []byte) []string {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return []string{"the answer is not a JSON object: " + err.Error()}
	}
	c := &checker{doc: doc}

	c.str("client_id", true, 1, 36)
	c.str("client_secret", false, 1, 36)
	c.nonNegativeInt("client_id_issued_at")
	c.nonNegativeInt("client_secret_expires_at")

	if uris, ok := c.strList("redirect_uris", true); ok {
		if len(uris) == 0 {
			c.fail("redirect_uris: must not be empty")
		}
		for i, u := range uris {
			if n := utf8.RuneCountInString(u); n < 1 || n > 256 {
				c.fail("redirect_uris[%d]: length %d, want 1..256", i, n)
			}
			if msg := obURLProblem(u); msg != "" {
				c.fail("redirect_uris[%d] %q: %s", i, u, msg)
			}
		}
	}

	method, _ := c.oneOf("token_endpoint_auth_method", true, authMethods)
	grants := grantTypes32
	if spec == Spec33 {
		grants = grantTypes33
	}
	gts, _ := c.each("grant_types", true, grants)
	if c.present("grant_types") && len(gts) == 0 {
		c.fail("grant_types: must not be empty")
	}
	c.each("response_types", false, responseTypes)

	if id, ok := c.str("software_id", false, 0, 0); ok && !softwareIDPattern.MatchString(id) {
		c.fail("software_id %q: want 1..22 characters of [0-9a-zA-Z]", id)
	}
	c.str("scope", true, 1, 256)
	if ssa, ok := c.str("software_statement", true, 1, 0); ok && strings.Count(ssa, ".") != 2 {
		c.fail("software_statement: not a compact JWS")
	}
	c.oneOf("application_type", true, []string{"web", "mobile"})

	c.str("id_token_signed_response_alg", true, 1, 5)
	c.str("request_object_signing_alg", true, 1, 5)
	_, hasSigningAlg := c.str("token_endpoint_auth_signing_alg", false, 1, 5)
	_, hasDN := c.str("tls_client_auth_subject_dn", false, 1, 128)
	switch method {
	case "private_key_jwt", "client_secret_jwt":
		if !hasSigningAlg {
			c.fail("token_endpoint_auth_signing_alg: required with token_endpoint_auth_method %s", method)
		}
	case "tls_client_auth":
		if !hasDN {
			c.fail("tls_client_auth_subject_dn: required with token_endpoint_auth_method tls_client_auth")
		}
	}

	if spec == Spec33 {
		c.checkCIBA(slices.Contains(gts, GrantCIBA))
	}
	sort.Strings(c.failures)
	return c.failures
}

func (c *checker) checkCIBA(ciba bool) {
	mode, hasMode := c.oneOf("backchannel_token_delivery_mode", ciba, []string{"poll", "ping"})
	endpoint, hasEndpoint := c.str("backchannel_client_notification_endpoint", false, 1, 256)
	if hasMode && mode == "ping" && !hasEndpoint {
		c.fail("backchannel_client_notification_endpoint: required with backchannel_token_delivery_mode ping")
	}
	if hasEndpoint {
		if u, err := url.Parse(endpoint); err != nil || u.Scheme != "https" || u.Host == "" {
			c.fail("backchannel_client_notification_endpoint %q: not an https URL", endpoint)
		}
	}
	c.str("backchannel_authentication_request_signing_alg", false, 1, 5)
	if raw, ok := c.doc["backchannel_user_code_parameter_supported"]; ok {
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			c.fail("backchannel_user_code_parameter_supported: not a boolean")
		}
	}
	if !ciba {
		for _, name := range []string{"backchannel_token_delivery_mode", "backchannel_client_notification_endpoint", "backchannel_authentication_request_signing_alg"} {
			if c.present(name) {
				c.fail("%s: only with the grant type %s", name, GrantCIBA)
			}
		}
	}
}

// obURLProblem is the tool's OB URL rule: https, not localhost or a loopback address, no
// fragment. Empty means fine.
func obURLProblem(s string) string {
	u, err := url.ParseRequestURI(s)
	if err != nil {
		return "not a URL"
	}
	if u.Scheme != "https" {
		return "not https"
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "localhost"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return "a loopback address"
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return "has a fragment"
	}
	return ""
}

type checker struct {
	doc      map[string]json.RawMessage
	failures []string
}

func (c *checker) fail(format string, args ...any) {
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

// present: the member is there and not null.
func (c *checker) present(name string) bool {
	raw, ok := c.doc[name]
	return ok && string(raw) != "null"
}

// str checks a string member; max 0 means no upper bound. ok reports a string was found.
func (c *checker) str(name string, required bool, min, max int) (string, bool) {
	if !c.present(name) {
		if required {
			c.fail("%s: required", name)
		}
		return "", false
	}
	var s string
	if err := json.Unmarshal(c.doc[name], &s); err != nil {
		c.fail("%s: not a string", name)
		return "", false
	}
	n := utf8.RuneCountInString(s)
	if n < min || (max > 0 && n > max) {
		if max > 0 {
			c.fail("%s: length %d, want %d..%d", name, n, min, max)
		} else {
			c.fail("%s: length %d, want at least %d", name, n, min)
		}
	}
	return s, true
}

func (c *checker) oneOf(name string, required bool, allowed []string) (string, bool) {
	s, ok := c.str(name, required, 0, 0)
	if ok && !slices.Contains(allowed, s) {
		c.fail("%s %q: want one of %s", name, s, strings.Join(allowed, ", "))
	}
	return s, ok
}

func (c *checker) strList(name string, required bool) ([]string, bool) {
	if !c.present(name) {
		if required {
			c.fail("%s: required", name)
		}
		return nil, false
	}
	var list []string
	if err := json.Unmarshal(c.doc[name], &list); err != nil {
		c.fail("%s: not an array of strings", name)
		return nil, false
	}
	return list, true
}

func (c *checker) each(name string, required bool, allowed []string) ([]string, bool) {
	list, ok := c.strList(name, required)
	for i, v := range list {
		if !slices.Contains(allowed, v) {
			c.fail("%s[%d] %q: want one of %s", name, i, v, strings.Join(allowed, ", "))
		}
	}
	return list, ok
}

func (c *checker) nonNegativeInt(name string) {
	if !c.present(name) {
		return
	}
	var n json.Number
	raw := c.doc[name]
	if err := json.Unmarshal(raw, &n); err != nil || raw[0] == '"' {
		c.fail("%s: not a number", name)
		return
	}
	if i, err := n.Int64(); err != nil || i < 0 {
		c.fail("%s %s: want an integer ≥ 0", name, n)
	}
}

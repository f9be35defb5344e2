package caddymodule

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dcrgate/dcrgate/dcr/obprofile"
)

// Discovery fields the OB profile governs. The published value of each list is the profile's,
// in the profile's order, minus what the backend's document lists without it; a field the
// backend omits (or sets to null) is published with the profile's value, because an OB client
// reads a missing field as "anything", or worse as "none" (request_object_signing_alg).
const (
	fieldAuthMethods          = "token_endpoint_auth_methods_supported"
	fieldAuthSigningAlgs      = "token_endpoint_auth_signing_alg_values_supported"
	fieldRequestObjectAlgs    = "request_object_signing_alg_values_supported"
	fieldIDTokenAlgs          = "id_token_signing_alg_values_supported"
	fieldGrantTypes           = "grant_types_supported"
	fieldResponseTypes        = "response_types_supported"
	fieldScopes               = "scopes_supported"
	fieldBoundAccessTokens    = "tls_client_certificate_bound_access_tokens"
	fieldCIBAEndpoint         = "backchannel_authentication_endpoint"
	fieldCIBADeliveryModes    = "backchannel_token_delivery_modes_supported"
	fieldCIBARequestAlgs      = "backchannel_authentication_request_signing_alg_values_supported"
	fieldCIBAUserCodeSupports = "backchannel_user_code_parameter_supported"
)

// What obprofile enforces beyond its Config: client_secret_jwt signs with these only
// (obprofile.CheckTokenEndpointAuthSigningAlg), and CIBA delivery is poll or ping, never push,
// with no user code (obprofile.CheckCIBA).
var (
	clientSecretJWTAlgs = []string{"HS256", "HS384", "HS512"}
	cibaDeliveryModes   = []string{"poll", "ping"}
)

// discoveryConflict is a governed field for which the gateway and the backend have no value
// in common: no registration could work, so the document must not pretend otherwise.
type discoveryConflict struct {
	field            string
	gateway, backend []string
}

func (c *discoveryConflict) Error() string {
	return fmt.Sprintf("dcr_discovery: %s has no value both the gateway and the backend accept "+
		"(the dcr handler's OB profile: %s; the backend publishes: %s), so no client could register and use its registration; "+
		"change the dcr profile or the backend so they share one",
		c.field, listOrNothing(c.gateway), listOrNothing(c.backend))
}

func listOrNothing(l []string) string {
	if len(l) == 0 {
		return "nothing"
	}
	return strings.Join(l, ", ")
}

// applyProfile rewrites the backend's document m so that every governed field says what p (an
// effective profile, defaults filled) accepts and the backend supports. It returns warnings
// worth logging, or the first field that cannot work.
func applyProfile(m map[string]any, p *obprofile.Config) (warnings []string, err error) {
	methods, err := publishList(m, fieldAuthMethods, p.AuthMethods, exact)
	if err != nil {
		return nil, err
	}
	// token_endpoint_auth_signing_alg means something only with the *_jwt methods published.
	var authAlgs []string
	if slices.Contains(methods, obprofile.AuthPrivateKeyJWT) {
		authAlgs = append(authAlgs, p.SigningAlgs...)
	}
	if slices.Contains(methods, obprofile.AuthClientSecretJWT) {
		authAlgs = append(authAlgs, clientSecretJWTAlgs...)
	}
	if len(authAlgs) == 0 {
		delete(m, fieldAuthSigningAlgs)
	} else if _, err := publishList(m, fieldAuthSigningAlgs, authAlgs, exact); err != nil {
		return nil, err
	}
	for _, f := range []string{fieldRequestObjectAlgs, fieldIDTokenAlgs} {
		if _, err := publishList(m, f, p.SigningAlgs, exact); err != nil {
			return nil, err
		}
	}
	// CIBA Core §4: an OP that supports CIBA publishes its backchannel_authentication_endpoint;
	// without one the backend cannot serve the grant, whatever else it publishes.
	gatewayGrants := p.GrantTypes
	if _, ok := m[fieldCIBAEndpoint].(string); !ok {
		gatewayGrants = slices.DeleteFunc(slices.Clone(gatewayGrants), func(g string) bool { return g == obprofile.GrantCIBA })
		if len(gatewayGrants) == 0 {
			return nil, fmt.Errorf("dcr_discovery: %s: the dcr handler's OB profile allows only %s and the backend publishes no %s",
				fieldGrantTypes, obprofile.GrantCIBA, fieldCIBAEndpoint)
		}
	}
	grants, err := publishList(m, fieldGrantTypes, gatewayGrants, exact)
	if err != nil {
		return nil, err
	}
	if _, err := publishList(m, fieldResponseTypes, p.ResponseTypes, sameResponseType); err != nil {
		return nil, err
	}
	if _, err := publishList(m, fieldScopes, p.Scopes, exact); err != nil {
		return nil, err
	}

	// RFC 8705 §3.3: whether the server binds access tokens to the client's certificate. FAPI
	// requires it; the gateway cannot bind tokens a backend does not, so a backend's false
	// stays false, with a warning.
	switch v := m[fieldBoundAccessTokens].(type) {
	case nil:
		m[fieldBoundAccessTokens] = true
	case bool:
		if !v {
			warnings = append(warnings, "the backend publishes "+fieldBoundAccessTokens+" false: its access tokens are not bound to the client's certificate, which FAPI requires")
		}
	default:
		return nil, fmt.Errorf("dcr_discovery: the backend's %s is not a boolean", fieldBoundAccessTokens)
	}

	// CIBA (OB DCR v3.3) only where the published grant types include it; otherwise no CIBA
	// registration can work, so its fields are not offered.
	if !slices.Contains(grants, obprofile.GrantCIBA) {
		delete(m, fieldCIBADeliveryModes)
		delete(m, fieldCIBARequestAlgs)
		delete(m, fieldCIBAUserCodeSupports)
		return warnings, nil
	}
	if _, err := publishList(m, fieldCIBADeliveryModes, cibaDeliveryModes, exact); err != nil {
		return nil, err
	}
	if _, err := publishList(m, fieldCIBARequestAlgs, p.SigningAlgs, exact); err != nil {
		return nil, err
	}
	// The profile requires backchannel_user_code_parameter false; a backend that supports
	// user codes also works without them.
	m[fieldCIBAUserCodeSupports] = false
	return warnings, nil
}

// publishList sets m[field] to the values of gateway (in its order) that the backend's list
// contains by same, or to gateway when the backend has no such field, and returns it.
func publishList(m map[string]any, field string, gateway []string, same func(a, b string) bool) ([]string, error) {
	raw, present := m[field]
	if !present || raw == nil {
		if len(gateway) == 0 {
			return nil, &discoveryConflict{field: field}
		}
		m[field] = gateway
		return gateway, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("dcr_discovery: the backend's %s is not a JSON array", field)
	}
	backend := make([]string, 0, len(list))
	for _, v := range list {
		if s, ok := v.(string); ok {
			backend = append(backend, s)
		}
	}
	out := intersectLists(gateway, backend, same)
	if len(out) == 0 {
		return nil, &discoveryConflict{field: field, gateway: gateway, backend: backend}
	}
	m[field] = out
	return out, nil
}

// intersectLists is the values of a (in a's order) that b contains by same.
func intersectLists(a, b []string, same func(x, y string) bool) []string {
	out := []string{}
	for _, x := range a {
		if slices.ContainsFunc(b, func(y string) bool { return same(x, y) }) {
			out = append(out, x)
		}
	}
	return out
}

func exact(a, b string) bool { return a == b }

// sameResponseType compares response types as sets of tokens ("id_token code" is "code
// id_token"), as obprofile does.
func sameResponseType(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	slices.Sort(fa)
	slices.Sort(fb)
	return slices.Equal(fa, fb)
}

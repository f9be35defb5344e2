package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// Discovery is the part of an ASPSP's OpenID Provider Metadata an OB client reads. A list
// the document does not carry is nil, so that "missing" and "empty" stay apart (the tool sends
// request_object_signing_alg "none" when the list is missing).
type Discovery struct {
	Issuer                                     string   `json:"issuer"`
	RegistrationEndpoint                       string   `json:"registration_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RequestObjectSigningAlgValuesSupported     []string `json:"request_object_signing_alg_values_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	ScopesSupported                            []string `json:"scopes_supported"`
	TLSClientCertificateBoundAccessTokens      *bool    `json:"tls_client_certificate_bound_access_tokens"`

	// Raw is the whole document.
	Raw map[string]any `json:"-"`
}

// maxDocument bounds every answer this client reads.
const maxDocument = 1 << 20

// FetchDiscovery reads the discovery document at discoveryURL.
func FetchDiscovery(ctx context.Context, hc *http.Client, discoveryURL string) (*Discovery, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, discoveryURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", discoveryURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", discoveryURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s answered %d: %s", discoveryURL, resp.StatusCode, body)
	}
	var d Discovery
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	if err := json.Unmarshal(body, &d.Raw); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	return &d, nil
}

// CheckRegistrationEndpoint is the tool's DCR-001: registration_endpoint is present and an
// absolute https URL.
func (d *Discovery) CheckRegistrationEndpoint() error {
	if d.RegistrationEndpoint == "" {
		return fmt.Errorf("discovery has no registration_endpoint")
	}
	u, err := url.Parse(d.RegistrationEndpoint)
	if err != nil {
		return fmt.Errorf("registration_endpoint %q: %w", d.RegistrationEndpoint, err)
	}
	if u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("registration_endpoint %q is not an absolute https URL", d.RegistrationEndpoint)
	}
	return nil
}

// RequestObjectSigningAlg is what the tool registers as request_object_signing_alg: the first
// advertised value, "none" when discovery advertises none.
func (d *Discovery) RequestObjectSigningAlg() string {
	if len(d.RequestObjectSigningAlgValuesSupported) > 0 {
		return d.RequestObjectSigningAlgValuesSupported[0]
	}
	return "none"
}

// ResponseTypes is what the tool registers as response_types: "code" and "code id_token" as
// far as response_types_supported lists them (in its order), nil (the claim left out, so the
// OB default code id_token applies) when discovery has no such list. An error means the list
// offers neither.
func (d *Discovery) ResponseTypes() ([]string, error) {
	if d.ResponseTypesSupported == nil {
		return nil, nil
	}
	var out []string
	for _, rt := range d.ResponseTypesSupported {
		if rt == "code" || rt == "code id_token" {
			out = append(out, rt)
		}
	}
	if out == nil {
		return nil, fmt.Errorf("response_types_supported %v offers neither code nor code id_token", d.ResponseTypesSupported)
	}
	return out, nil
}

package conformance

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// The token endpoint auth methods an OB client may use.
const (
	TLSClientAuth = "tls_client_auth"
	PrivateKeyJWT = "private_key_jwt"
)

// TPPFiles are what the TPP holds: the transport certificate (PEM, leaf first) and its key,
// a signing key and the kid under which its directory publishes it, the SSA, and the CA
// bundle that roots the ASPSP's TLS certificate.
type TPPFiles struct {
	TransportCert string
	TransportKey  string
	SigningKey    string
	SigningKID    string
	SSA           string
	CABundle      string
}

// Options shape one client.
type Options struct {
	// DiscoveryURL is the ASPSP's /.well-known/openid-configuration.
	DiscoveryURL string
	Files        TPPFiles
	// AuthMethod is tls_client_auth or private_key_jwt and must be advertised; empty picks
	// the first of those two that discovery advertises, as the tool does.
	AuthMethod string
	// Audience of the registration request (the ASPSP's identifier); default the discovered
	// issuer.
	Audience string
	// Scope registered and asked for at the token endpoint; default "accounts openid", the
	// tool's.
	Scope string
	// RequestLifetime is exp - iat of the registration request; default 5 minutes.
	RequestLifetime time.Duration
}

// Client is one TPP talking OB DCR to one ASPSP, over mTLS with its transport certificate.
type Client struct {
	HTTP      *http.Client
	Discovery *Discovery

	// What was picked from discovery and the TPP's files.
	AuthMethod              string
	SigningAlg              string
	RequestObjectSigningAlg string
	ResponseTypes           []string
	SoftwareID              string
	RedirectURIs            []string
	SubjectDN               string
	Audience                string
	Scope                   string

	// TransportCert is the TPP's transport (mTLS) certificate.
	TransportCert *x509.Certificate

	signingKey crypto.Signer
	kid        string
	ssa        string
	lifetime   time.Duration
}

// New loads the TPP's files, reads discovery over mTLS and picks what to register.
func New(ctx context.Context, o Options) (*Client, error) {
	hc, leaf, err := NewHTTPClient(o.Files)
	if err != nil {
		return nil, err
	}
	key, err := readPrivateKey(o.Files.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	raw, err := os.ReadFile(o.Files.SSA)
	if err != nil {
		return nil, fmt.Errorf("SSA: %w", err)
	}
	c := &Client{
		HTTP:          hc,
		TransportCert: leaf,
		// The tool's default subject DN: the RDN sequence in RFC 4514 order.
		SubjectDN:  leaf.Subject.ToRDNSequence().String(),
		signingKey: key,
		kid:        o.Files.SigningKID,
		ssa:        strings.TrimSpace(string(raw)),
		Scope:      o.Scope,
		lifetime:   o.RequestLifetime,
	}
	if c.Scope == "" {
		c.Scope = "accounts openid"
	}
	if c.lifetime == 0 {
		c.lifetime = 5 * time.Minute
	}
	switch key.(type) {
	case *rsa.PrivateKey:
		c.SigningAlg = "PS256"
	case *ecdsa.PrivateKey:
		c.SigningAlg = "ES256"
	default:
		return nil, fmt.Errorf("signing key: %T is neither RSA nor EC", key)
	}
	ssaClaims, err := jwsPayload(c.ssa)
	if err != nil {
		return nil, fmt.Errorf("SSA: %w", err)
	}
	c.SoftwareID, _ = ssaClaims["software_id"].(string)
	if c.SoftwareID == "" {
		return nil, errors.New("SSA: no software_id")
	}
	if uris, ok := ssaClaims["software_redirect_uris"].([]any); ok {
		for _, u := range uris {
			if s, ok := u.(string); ok {
				c.RedirectURIs = append(c.RedirectURIs, s)
			}
		}
	}

	if c.Discovery, err = FetchDiscovery(ctx, c.HTTP, o.DiscoveryURL); err != nil {
		return nil, err
	}
	d := c.Discovery
	c.Audience = o.Audience
	if c.Audience == "" {
		c.Audience = d.Issuer
	}
	switch {
	case o.AuthMethod != "" && !slices.Contains(d.TokenEndpointAuthMethodsSupported, o.AuthMethod):
		return nil, fmt.Errorf("discovery does not advertise token_endpoint_auth_method %s (token_endpoint_auth_methods_supported %v)", o.AuthMethod, d.TokenEndpointAuthMethodsSupported)
	case o.AuthMethod != "":
		c.AuthMethod = o.AuthMethod
	case slices.Contains(d.TokenEndpointAuthMethodsSupported, TLSClientAuth):
		c.AuthMethod = TLSClientAuth
	case slices.Contains(d.TokenEndpointAuthMethodsSupported, PrivateKeyJWT):
		c.AuthMethod = PrivateKeyJWT
	default:
		return nil, fmt.Errorf("discovery advertises neither tls_client_auth nor private_key_jwt (%v)", d.TokenEndpointAuthMethodsSupported)
	}
	if c.AuthMethod == PrivateKeyJWT && d.TokenEndpointAuthSigningAlgValuesSupported != nil &&
		!slices.Contains(d.TokenEndpointAuthSigningAlgValuesSupported, c.SigningAlg) {
		return nil, fmt.Errorf("discovery does not advertise token_endpoint_auth_signing_alg %s (%v)", c.SigningAlg, d.TokenEndpointAuthSigningAlgValuesSupported)
	}
	c.RequestObjectSigningAlg = d.RequestObjectSigningAlg()
	if c.ResponseTypes, err = d.ResponseTypes(); err != nil {
		return nil, err
	}
	return c, nil
}

// NewHTTPClient is the TPP's HTTP client: mTLS with its transport certificate, trusting the
// CA bundle. It returns the transport certificate too.
func NewHTTPClient(f TPPFiles) (*http.Client, *x509.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(f.TransportCert, f.TransportKey)
	if err != nil {
		return nil, nil, fmt.Errorf("transport certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("transport certificate: %w", err)
	}
	roots := x509.NewCertPool()
	bundle, err := os.ReadFile(f.CABundle)
	if err != nil {
		return nil, nil, fmt.Errorf("CA bundle: %w", err)
	}
	if !roots.AppendCertsFromPEM(bundle) {
		return nil, nil, fmt.Errorf("CA bundle %s holds no certificate", f.CABundle)
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{pair},
	}}}, leaf, nil
}

// RegistrationClaims is the tool's registration request: the envelope (aud, iss = software_id,
// iat, exp, jti), the SSA and the metadata, with tls_client_auth_subject_dn or
// token_endpoint_auth_signing_alg as the auth method needs. Callers change the map to make bad
// requests.
func (c *Client) RegistrationClaims() map[string]any {
	now := time.Now()
	claims := map[string]any{
		"aud":                          c.Audience,
		"iss":                          c.SoftwareID,
		"iat":                          now.Unix(),
		"exp":                          now.Add(c.lifetime).Unix(),
		"jti":                          newJTI(),
		"software_statement":           c.ssa,
		"grant_types":                  []string{"authorization_code", "client_credentials"},
		"application_type":             "web",
		"redirect_uris":                c.RedirectURIs,
		"token_endpoint_auth_method":   c.AuthMethod,
		"scope":                        c.Scope,
		"request_object_signing_alg":   c.RequestObjectSigningAlg,
		"id_token_signed_response_alg": c.SigningAlg,
	}
	if c.ResponseTypes != nil {
		claims["response_types"] = c.ResponseTypes
	}
	switch c.AuthMethod {
	case TLSClientAuth:
		claims["tls_client_auth_subject_dn"] = c.SubjectDN
	case PrivateKeyJWT:
		claims["token_endpoint_auth_signing_alg"] = c.SigningAlg
	}
	return claims
}

// Sign signs claims with the TPP's signing key; alg empty means the client's SigningAlg.
func (c *Client) Sign(claims map[string]any, alg string) (string, error) {
	if alg == "" {
		alg = c.SigningAlg
	}
	return SignJWS(alg, c.kid, c.signingKey, claims)
}

// Response is one answer of the ASPSP.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object.
func (r *Response) JSON() (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return nil, fmt.Errorf("answer %d is not a JSON object: %v: %.300s", r.Status, err, r.Body)
	}
	return m, nil
}

// Error reads an RFC 7591 §3.2.2 error answer: its error code and description.
func (r *Response) Error() (code, description string, err error) {
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		return "", "", fmt.Errorf("answer %d is not an RFC 7591 error: %v: %.300s", r.Status, err, r.Body)
	}
	return e.Error, e.Description, nil
}

func (r *Response) String() string { return fmt.Sprintf("%d %.500s", r.Status, r.Body) }

// Register POSTs a signed registration request (application/jwt) to the discovered
// registration_endpoint.
func (c *Client) Register(ctx context.Context, request string) (*Response, error) {
	return c.do(ctx, http.MethodPost, c.Discovery.RegistrationEndpoint, "application/jwt", "", []byte(request))
}

// Retrieve is GET registration_endpoint/{client_id} with the access token.
func (c *Client) Retrieve(ctx context.Context, clientID, accessToken string) (*Response, error) {
	return c.do(ctx, http.MethodGet, c.clientURL(clientID), "", accessToken, nil)
}

// Update is PUT registration_endpoint/{client_id} with a signed request and the access token.
func (c *Client) Update(ctx context.Context, clientID, accessToken, request string) (*Response, error) {
	return c.do(ctx, http.MethodPut, c.clientURL(clientID), "application/jwt", accessToken, []byte(request))
}

// Delete is DELETE registration_endpoint/{client_id} with the access token.
func (c *Client) Delete(ctx context.Context, clientID, accessToken string) (*Response, error) {
	return c.do(ctx, http.MethodDelete, c.clientURL(clientID), "", accessToken, nil)
}

// clientURL is where the OB spec puts a client's registration: /register/{ClientId}.
func (c *Client) clientURL(clientID string) string {
	return strings.TrimRight(c.Discovery.RegistrationEndpoint, "/") + "/" + url.PathEscape(clientID)
}

// Token asks the discovered token_endpoint for a client-credentials token: over mTLS alone
// for tls_client_auth (client_id in the form), with a client assertion signed with the TPP's
// key for private_key_jwt.
func (c *Client) Token(ctx context.Context, clientID string) (*Response, error) {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {c.Scope}}
	switch c.AuthMethod {
	case TLSClientAuth:
		form.Set("client_id", clientID)
	case PrivateKeyJWT:
		now := time.Now()
		assertion, err := c.Sign(map[string]any{
			"iss": clientID, "sub": clientID, "aud": c.Discovery.TokenEndpoint,
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": newJTI(),
		}, "")
		if err != nil {
			return nil, err
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	}
	return c.do(ctx, http.MethodPost, c.Discovery.TokenEndpoint, "application/x-www-form-urlencoded", "", []byte(form.Encode()))
}

// AccessToken is Token that wants a 200 with an access_token.
func (c *Client) AccessToken(ctx context.Context, clientID string) (string, error) {
	resp, err := c.Token(ctx, clientID)
	if err != nil {
		return "", err
	}
	if resp.Status != http.StatusOK {
		return "", fmt.Errorf("token endpoint: %s", resp)
	}
	m, err := resp.JSON()
	if err != nil {
		return "", err
	}
	tok, _ := m["access_token"].(string)
	if tok == "" {
		return "", fmt.Errorf("token endpoint answered no access_token: %s", resp)
	}
	return tok, nil
}

func (c *Client) do(ctx context.Context, method, target, contentType, accessToken string, body []byte) (*Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, target, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// readPrivateKey reads a PEM private key: PKCS#8, PKCS#1 (RSA) or SEC 1 (EC).
func readPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var k any
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: %T cannot sign", path, k)
	}
	return s, nil
}

func newJTI() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

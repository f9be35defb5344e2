// Package tppclient is a TPP's Open Banking UK DCR v3.2 client: it builds and signs registration
// requests and calls POST /register and GET/PUT/DELETE /register/{client_id} over mTLS. The
// `caddy dcr` commands and the end-to-end tests use it; every knob a negative test needs (alg,
// kid, extra headers, another key, raw bodies, content types) is exposed rather than hidden.
package tppclient

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/dcrgate/dcrgate/internal/sandbox"
)

// ContentTypeJOSE is the media type of a signed registration request.
const ContentTypeJOSE = "application/jose"

// RequestLifetime is the exp - iat of a default request.
const RequestLifetime = 5 * time.Minute

// maxResponseBody bounds what the client reads back; DCR responses are small.
const maxResponseBody = 1 << 20

// Client is one TPP talking to one DCR endpoint.
type Client struct {
	// Endpoint is the registration endpoint, e.g. https://localhost:8443/register.
	Endpoint string
	// HTTP carries the mTLS configuration (transport certificate, server roots).
	HTTP *http.Client
	// SigningKey is the private request signing key, with kid (and alg) set.
	SigningKey jwk.Key
	// Alg is the default JWS algorithm (PS256 or ES256).
	Alg string
	// SoftwareID is the iss of the requests.
	SoftwareID string
	// SoftwareStatement is the compact SSA sent in software_statement.
	SoftwareStatement string
	// Audience is the aud of the requests (the ASPSP's issuer).
	Audience string
	// CertSubjectDN is the transport certificate's Subject.String(), sent as
	// tls_client_auth_subject_dn.
	CertSubjectDN string
	// RedirectURIs are the SSA's software_redirect_uris.
	RedirectURIs []string
}

// Files locate a TPP's material on disk, for clients outside a sandbox.
type Files struct {
	Cert, Key string // transport certificate chain and key (PEM)
	CA        string // server roots (PEM); empty means the system roots
	SSA       string // compact SSA file
	// SigningKey is a PEM private key; KID defaults to its RFC 7638 SHA-256 thumbprint and
	// Alg to PS256 (RSA) or ES256 (P-256).
	SigningKey string
	KID        string
	Alg        string
	// SoftwareID defaults to the SSA's software_id claim.
	SoftwareID string
}

// FromSandbox builds the client of a sandbox TPP: its transport certificate for mTLS, the
// sandbox bundle as server roots, its PS256 signing key and its stored SSA. An empty audience
// defaults to the endpoint's origin (DefaultAudience).
func FromSandbox(sb *sandbox.Sandbox, tpp *sandbox.TPP, endpoint, audience string) (*Client, error) {
	return FromFiles(Files{
		Cert:       tpp.TransportCert,
		Key:        tpp.TransportKey,
		CA:         sb.Files.CABundle,
		SSA:        tpp.SSAFile,
		SigningKey: tpp.SigningKey,
		KID:        tpp.SigningKID,
		Alg:        "PS256",
		SoftwareID: tpp.SoftwareID,
	}, endpoint, audience)
}

// FromFiles builds a client from explicit files.
func FromFiles(f Files, endpoint, audience string) (*Client, error) {
	if f.Cert == "" || f.Key == "" {
		return nil, errors.New("tppclient: a transport certificate and key are required")
	}
	pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("tppclient: transport certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("tppclient: CA: %w", err)
		}
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tppclient: %s holds no certificate", f.CA)
		}
	}

	c := &Client{
		Endpoint:      endpoint,
		HTTP:          &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig, ForceAttemptHTTP2: true}},
		CertSubjectDN: leaf.Subject.String(),
		SoftwareID:    f.SoftwareID,
		Audience:      audience,
	}
	if c.Audience == "" {
		if c.Audience, err = DefaultAudience(endpoint); err != nil {
			return nil, err
		}
	}
	if f.SigningKey != "" {
		if c.SigningKey, c.Alg, err = LoadSigningKey(f.SigningKey, f.KID, f.Alg); err != nil {
			return nil, err
		}
	}
	if f.SSA != "" {
		b, err := os.ReadFile(f.SSA)
		if err != nil {
			return nil, fmt.Errorf("tppclient: SSA: %w", err)
		}
		if err := c.SetSoftwareStatement(strings.TrimSpace(string(b))); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// SetSoftwareStatement sets the SSA and takes the redirect URIs (and the software id, if not
// set yet) from its claims. The SSA is decoded, not verified: verifying it is the gateway's job.
func (c *Client) SetSoftwareStatement(ssa string) error {
	claims, err := DecodeClaims(ssa)
	if err != nil {
		return fmt.Errorf("tppclient: SSA: %w", err)
	}
	c.SoftwareStatement = ssa
	c.RedirectURIs = stringList(claims["software_redirect_uris"])
	if c.SoftwareID == "" {
		c.SoftwareID, _ = claims["software_id"].(string)
	}
	return nil
}

// LoadSigningKey reads a PEM private key as a JWK with kid and alg set. An empty kid becomes
// the RFC 7638 SHA-256 thumbprint (what the sandbox uses); an empty alg is PS256 for RSA and
// ES256 for P-256.
func LoadSigningKey(path, kid, alg string) (jwk.Key, string, error) {
	raw, err := sandbox.ReadPrivateKey(path)
	if err != nil {
		return nil, "", fmt.Errorf("tppclient: signing key: %w", err)
	}
	if alg == "" {
		switch raw.(type) {
		case *rsa.PrivateKey:
			alg = "PS256"
		case *ecdsa.PrivateKey:
			alg = "ES256"
		default:
			return nil, "", fmt.Errorf("tppclient: signing key: unsupported type %T", raw)
		}
	}
	key, err := jwk.FromRaw(raw)
	if err != nil {
		return nil, "", err
	}
	if kid == "" {
		tp, err := key.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, "", err
		}
		kid = base64.RawURLEncoding.EncodeToString(tp)
	}
	if err := key.Set(jwk.KeyIDKey, kid); err != nil {
		return nil, "", err
	}
	if err := key.Set(jwk.AlgorithmKey, jwa.SignatureAlgorithm(alg)); err != nil {
		return nil, "", err
	}
	return key, alg, nil
}

// DefaultAudience is the endpoint's scheme://host[:port].
func DefaultAudience(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("tppclient: endpoint %q is not an absolute URL", endpoint)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Claims returns the default OB DCR v3.2 registration request for this client. Every call has
// a fresh iat, exp and jti; callers edit the map (or use ApplyOverrides) for variants.
func (c *Client) Claims() map[string]any {
	now := time.Now()
	claims := map[string]any{
		"iss":                          c.SoftwareID,
		"aud":                          c.Audience,
		"iat":                          now.Unix(),
		"exp":                          now.Add(RequestLifetime).Unix(),
		"jti":                          uuid.NewString(),
		"token_endpoint_auth_method":   "tls_client_auth",
		"tls_client_auth_subject_dn":   c.CertSubjectDN,
		"grant_types":                  []string{"authorization_code", "client_credentials", "refresh_token"},
		"response_types":               []string{"code id_token"},
		"application_type":             "web",
		"id_token_signed_response_alg": "PS256",
		"request_object_signing_alg":   "PS256",
		"scope":                        "openid accounts payments",
		"software_statement":           c.SoftwareStatement,
	}
	if len(c.RedirectURIs) > 0 {
		claims["redirect_uris"] = []string{c.RedirectURIs[0]}
	}
	return claims
}

// SignOptions change how Sign signs; the zero value signs with the client's key, alg and kid.
type SignOptions struct {
	// Alg overrides the algorithm. "none" produces an unsigned JWS (empty signature).
	Alg string
	// KID overrides the kid header; a pointer so that "" (header omitted) differs from nil
	// (the key's kid).
	KID *string
	// ExtraHeaders are added to the protected header after alg/kid/typ, so they can replace
	// them; a nil value removes the header (e.g. {"typ": nil}).
	ExtraHeaders map[string]any
	// Key signs instead of the client's key (e.g. a key the TPP JWKS does not hold).
	Key jwk.Key
}

// Sign serialises claims and returns a compact JWS with protected header alg, kid and typ JWT.
func (c *Client) Sign(claims map[string]any, o SignOptions) ([]byte, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("tppclient: claims: %w", err)
	}
	key := o.Key
	if key == nil {
		key = c.SigningKey
	}
	alg := o.Alg
	if alg == "" && key != nil && key.Algorithm().String() != "" {
		alg = key.Algorithm().String()
	}
	if alg == "" {
		alg = c.Alg
	}
	if alg == "" {
		return nil, errors.New("tppclient: no signing algorithm")
	}
	kid := ""
	if key != nil {
		kid = key.KeyID()
	}
	if o.KID != nil {
		kid = *o.KID
	}

	hdr := jws.NewHeaders()
	if kid != "" {
		if err := hdr.Set(jws.KeyIDKey, kid); err != nil {
			return nil, err
		}
	}
	if err := hdr.Set(jws.TypeKey, "JWT"); err != nil {
		return nil, err
	}
	for name, v := range o.ExtraHeaders {
		if v == nil {
			if err := hdr.Remove(name); err != nil {
				return nil, err
			}
			continue
		}
		if err := hdr.Set(name, v); err != nil {
			return nil, fmt.Errorf("tppclient: header %s: %w", name, err)
		}
	}

	if alg == string(jwa.NoSignature) {
		return jws.Sign(payload, jws.WithInsecureNoSignature(jws.WithProtectedHeaders(hdr)))
	}
	if key == nil {
		return nil, errors.New("tppclient: no signing key")
	}
	// jws.Sign copies a jwk.Key's kid into the header; signing with the raw key leaves the
	// header exactly as built above, so a kid override (or omission) sticks.
	var raw any
	if err := key.Raw(&raw); err != nil {
		return nil, err
	}
	return jws.Sign(payload, jws.WithKey(jwa.SignatureAlgorithm(alg), raw, jws.WithProtectedHeaders(hdr)))
}

// Response is what the endpoint answered. JSON is the decoded body when it is a JSON object.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// OK reports a 2xx status.
func (r *Response) OK() bool { return r.Status >= 200 && r.Status < 300 }

// Register POSTs body to the endpoint. An empty contentType means application/jose; a
// non-empty bearer is sent as Authorization: Bearer (an initial access token).
func (c *Client) Register(ctx context.Context, body []byte, contentType, bearer string) (*Response, error) {
	if contentType == "" {
		contentType = ContentTypeJOSE
	}
	return c.do(ctx, http.MethodPost, c.Endpoint, body, contentType, bearer)
}

// Get reads a registration (RFC 7592 read).
func (c *Client) Get(ctx context.Context, clientID, token string) (*Response, error) {
	return c.do(ctx, http.MethodGet, c.ClientURL(clientID), nil, "", token)
}

// Update PUTs a signed request (application/jose) to the registration.
func (c *Client) Update(ctx context.Context, clientID, token string, body []byte) (*Response, error) {
	return c.UpdateAs(ctx, clientID, token, body, ContentTypeJOSE)
}

// UpdateAs is Update with another content type (for negative tests).
func (c *Client) UpdateAs(ctx context.Context, clientID, token string, body []byte, contentType string) (*Response, error) {
	if contentType == "" {
		contentType = ContentTypeJOSE
	}
	return c.do(ctx, http.MethodPut, c.ClientURL(clientID), body, contentType, token)
}

// Delete deletes the registration.
func (c *Client) Delete(ctx context.Context, clientID, token string) (*Response, error) {
	return c.do(ctx, http.MethodDelete, c.ClientURL(clientID), nil, "", token)
}

// ClientURL is the management URL of a client: the endpoint plus /{client_id}.
func (c *Client) ClientURL(clientID string) string {
	return strings.TrimRight(c.Endpoint, "/") + "/" + url.PathEscape(clientID)
}

func (c *Client) do(ctx context.Context, method, target string, body []byte, contentType, bearer string) (*Response, error) {
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
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBody))
	if err != nil {
		return nil, err
	}
	out := &Response{Status: res.StatusCode, Header: res.Header, Body: data}
	if len(bytes.TrimSpace(data)) > 0 {
		var obj map[string]any
		if json.Unmarshal(data, &obj) == nil {
			out.JSON = obj
		}
	}
	return out, nil
}

// DecodeClaims returns the payload of a compact JWS without verifying it.
func DecodeClaims(compact string) (map[string]any, error) {
	parts := strings.Split(strings.TrimSpace(compact), ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return claims, nil
}

// DecodeHeader returns the protected header of a compact JWS.
func DecodeHeader(compact string) (map[string]any, error) {
	head, _, ok := strings.Cut(strings.TrimSpace(compact), ".")
	if !ok {
		return nil, errors.New("not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	var hdr map[string]any
	if err := json.Unmarshal(b, &hdr); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	return hdr, nil
}

func stringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return append([]string(nil), l...)
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

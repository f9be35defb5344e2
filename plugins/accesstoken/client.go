package accesstoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Client authentication methods of the gateway at the authorization server.
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthTLSClientAuth     = "tls_client_auth"
)

// Client is the gateway's own OAuth client at the authorization server: how it authenticates
// its introspection and revocation calls, and the limits of those calls.
type Client struct {
	// ID is the gateway's client_id.
	ID string `json:"client_id"`
	// AuthMethod is client_secret_basic, private_key_jwt or tls_client_auth.
	AuthMethod string `json:"auth_method"`
	// Secret is the client_secret (client_secret_basic). Placeholders such as {env.VAR} are
	// expanded, so the secret need not be written in the config.
	Secret string `json:"client_secret,omitempty"`
	// SigningKey is a PEM private key file (private_key_jwt): RSA signs PS256, P-256 ES256.
	SigningKey string `json:"signing_key,omitempty"`
	// SigningKID is the kid of the assertions; default the key's RFC 7638 thumbprint.
	SigningKID string `json:"signing_kid,omitempty"`
	// Certificate and CertificateKey are PEM files of the TLS client certificate (tls_client_auth).
	Certificate    string `json:"certificate,omitempty"`
	CertificateKey string `json:"certificate_key,omitempty"`
	// Timeout of one call, default 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// MaxSize of a response in bytes, default 64 KiB.
	MaxSize int64 `json:"max_size,omitempty"`
	// TrustedRoots are PEM files of the CAs trusted for the authorization server; empty = the
	// system roots.
	TrustedRoots []string `json:"trusted_roots,omitempty"`
}

const (
	defaultCallTimeout = 5 * time.Second
	defaultMaxResponse = 64 << 10
	// assertionLifetime is the exp - iat of a private_key_jwt client assertion.
	assertionLifetime = time.Minute
)

// clientAuth authenticates one call to the authorization server.
type clientAuth struct {
	id, method, secret string
	key                any // crypto.Signer for private_key_jwt
	alg                jwa.SignatureAlgorithm
	kid                string
}

// open checks the client configuration and builds its HTTP client and authentication.
func (c *Client) open() (*http.Client, *clientAuth, error) {
	if c.ID == "" {
		return nil, nil, errors.New("client: client_id is required")
	}
	auth := &clientAuth{id: c.ID, method: c.AuthMethod}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	switch c.AuthMethod {
	case AuthClientSecretBasic:
		auth.secret = caddy.NewReplacer().ReplaceKnown(c.Secret, "")
		if auth.secret == "" {
			return nil, nil, errors.New("client: client_secret_basic needs a client_secret")
		}
	case AuthPrivateKeyJWT:
		if err := auth.loadSigningKey(c.SigningKey, c.SigningKID); err != nil {
			return nil, nil, err
		}
	case AuthTLSClientAuth:
		if c.Certificate == "" || c.CertificateKey == "" {
			return nil, nil, errors.New("client: tls_client_auth needs a certificate and its key")
		}
		pair, err := tls.LoadX509KeyPair(c.Certificate, c.CertificateKey)
		if err != nil {
			return nil, nil, fmt.Errorf("client: certificate: %w", err)
		}
		tlsConfig.Certificates = []tls.Certificate{pair}
	default:
		return nil, nil, fmt.Errorf("client: auth_method %q must be %s, %s or %s", c.AuthMethod, AuthClientSecretBasic, AuthPrivateKeyJWT, AuthTLSClientAuth)
	}
	if len(c.TrustedRoots) > 0 {
		tlsConfig.RootCAs = x509.NewCertPool()
		for _, f := range c.TrustedRoots {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, nil, fmt.Errorf("client: trusted_roots: %w", err)
			}
			if !tlsConfig.RootCAs.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("client: trusted_roots: %s holds no PEM certificate", f)
			}
		}
	}
	timeout := time.Duration(c.Timeout)
	if timeout <= 0 {
		timeout = defaultCallTimeout
	}
	hc := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			// Token calls go straight to the configured authorization server: a proxy meant
			// for other traffic must not see tokens and client credentials.
			Proxy:                  nil,
			TLSClientConfig:        tlsConfig,
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
			ForceAttemptHTTP2:      true,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
		},
		// A redirect could lead the token and the credentials anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return hc, auth, nil
}

func (a *clientAuth) loadSigningKey(path, kid string) error {
	if path == "" {
		return errors.New("client: private_key_jwt needs a signing_key")
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("client: signing_key: %w", err)
	}
	key, err := jwk.ParseKey(pem, jwk.WithPEM(true))
	if err != nil {
		return fmt.Errorf("client: signing_key: %w", err)
	}
	var raw any
	if err := key.Raw(&raw); err != nil {
		return fmt.Errorf("client: signing_key: %w", err)
	}
	switch k := raw.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return errors.New("client: signing_key: RSA keys must have at least 2048 bits")
		}
		a.alg = jwa.PS256
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return errors.New("client: signing_key: EC keys must be on P-256 (ES256)")
		}
		a.alg = jwa.ES256
	default:
		return fmt.Errorf("client: signing_key: want an RSA or P-256 private key, got %T", raw)
	}
	if kid == "" {
		tp, err := key.Thumbprint(crypto.SHA256)
		if err != nil {
			return fmt.Errorf("client: signing_key: %w", err)
		}
		kid = base64.RawURLEncoding.EncodeToString(tp)
	}
	a.key, a.kid = raw, kid
	return nil
}

// apply authenticates req, whose form (still to be encoded) is form, for a call to endpoint.
func (a *clientAuth) apply(req *http.Request, form url.Values, endpoint string, now time.Time) error {
	switch a.method {
	case AuthClientSecretBasic:
		// RFC 6749 §2.3.1: both parts are form-urlencoded before the Basic encoding.
		req.SetBasicAuth(url.QueryEscape(a.id), url.QueryEscape(a.secret))
	case AuthPrivateKeyJWT:
		assertion, err := a.assertion(endpoint, now)
		if err != nil {
			return err
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	case AuthTLSClientAuth:
		// RFC 8705 §2: the certificate authenticates, client_id names the client.
		form.Set("client_id", a.id)
	}
	return nil
}

// assertion is an RFC 7523 client assertion for a call to endpoint.
func (a *clientAuth) assertion(endpoint string, now time.Time) (string, error) {
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, a.kid)
	_ = hdr.Set(jws.TypeKey, "JWT")
	payload, err := json.Marshal(map[string]any{"iss": a.id, "sub": a.id, "aud": endpoint, "jti": uuid.NewString(),
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix()})
	if err != nil {
		return "", err
	}
	b, err := jws.Sign(payload, jws.WithKey(a.alg, a.key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		return "", fmt.Errorf("signing the client assertion: %w", err)
	}
	return string(b), nil
}

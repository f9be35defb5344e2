package accesstoken

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
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
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/internal/placeholder"
	"github.com/dcrgate/dcrgate/internal/tlsclient"
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
	// TLS is the TLS client configuration of the calls (reverse_proxy's names): the trust pool
	// of the authorization server's CAs and, for tls_client_auth, the client certificate;
	// default the system roots.
	TLS *tlsclient.Config `json:"tls,omitempty"`
	// Certificate and CertificateKey are PEM files of the TLS client certificate.
	//
	// Deprecated: use TLS (client_certificate_file, client_certificate_key_file).
	Certificate    string `json:"certificate,omitempty"`
	CertificateKey string `json:"certificate_key,omitempty"`
	// Timeout of one call, default 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// MaxSize of a response in bytes, default 64 KiB.
	MaxSize int64 `json:"max_size,omitempty"`
	// TrustedRoots are PEM files of the CAs trusted for the authorization server.
	//
	// Deprecated: use TLS (Caddyfile `tls_trust_pool file <pem>...`).
	TrustedRoots []string `json:"trusted_roots,omitempty"`
}

// tlsConfig is TLS with the deprecated Certificate, CertificateKey and TrustedRoots folded in;
// it warns once per use of a deprecated field.
func (c *Client) tlsConfig(log *zap.Logger) (*tlsclient.Config, error) {
	if c.Certificate == "" && c.CertificateKey == "" && len(c.TrustedRoots) == 0 {
		return c.TLS, nil
	}
	var t tlsclient.Config
	if c.TLS != nil {
		t = *c.TLS
	}
	if c.Certificate != "" || c.CertificateKey != "" {
		log.Warn("access_token client: certificate and certificate_key are deprecated; use tls.client_certificate_file and tls.client_certificate_key_file (Caddyfile: tls_client_auth <cert> <key>)")
		if t.ClientCertificateFile != "" {
			return nil, errors.New("client: certificate and tls.client_certificate_file are both set")
		}
		t.SetClientCertificate(c.Certificate, c.CertificateKey)
	}
	if len(c.TrustedRoots) > 0 {
		log.Warn("access_token client: trusted_roots is deprecated; use tls (Caddyfile: tls_trust_pool file <pem>...)")
		if err := t.AddTrustedFiles(c.TrustedRoots...); err != nil {
			return nil, fmt.Errorf("client: trusted_roots: %w", err)
		}
	}
	return &t, nil
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

// open checks the client configuration and builds its HTTP client and authentication from
// the TLS configuration t (tlsConfig's result).
func (c *Client) open(ctx caddy.Context, t *tlsclient.Config) (*http.Client, *clientAuth, error) {
	if c.ID == "" {
		return nil, nil, errors.New("client: client_id is required")
	}
	auth := &clientAuth{id: c.ID, method: c.AuthMethod}
	switch c.AuthMethod {
	case AuthClientSecretBasic:
		auth.secret = placeholder.Resolve(c.Secret)
		if auth.secret == "" {
			return nil, nil, errors.New("client: client_secret_basic needs a client_secret")
		}
	case AuthPrivateKeyJWT:
		if err := auth.loadSigningKey(c.SigningKey, c.SigningKID); err != nil {
			return nil, nil, err
		}
	case AuthTLSClientAuth:
		if !t.HasClientCertificate() {
			return nil, nil, errors.New("client: tls_client_auth needs a client certificate and its key")
		}
	default:
		return nil, nil, fmt.Errorf("client: auth_method %q must be %s, %s or %s", c.AuthMethod, AuthClientSecretBasic, AuthPrivateKeyJWT, AuthTLSClientAuth)
	}
	tlsConfig, err := t.Make(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("client: tls: %w", err)
	}
	if tlsConfig.InsecureSkipVerify {
		ctx.Logger().Warn("access_token client: tls_insecure_skip_verify is on: the authorization server is not authenticated")
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

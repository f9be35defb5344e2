package accesstoken

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/sync/singleflight"

	"github.com/dcrgate/dcrgate/internal/tlsclient"
)

// authServer is the gateway's connection to the authorization server: the HTTP client with the
// gateway's credentials, and the introspection cache. It is shared by every module with the
// same configuration and survives `caddy reload` with its cache.
type authServer struct {
	introspection      string
	cacheTTL           time.Duration
	revocationEndpoint string
	http               *http.Client
	auth               *clientAuth
	maxSize            int64

	cache   *introspectionCache
	flights singleflight.Group

	poolKey string
}

// ErrUnavailable wraps every failure to get an answer from the authorization server.
var ErrUnavailable = errors.New("accesstoken: authorization server unavailable")

var authServers = caddy.NewUsagePool()

// Destruct closes idle connections when the last module using it is unloaded.
func (s *authServer) Destruct() error {
	s.http.CloseIdleConnections()
	return nil
}

// acquireAuthServer returns the shared authServer for this configuration.
// The pool key covers the contents of the files the client's TLS configuration reads, so a
// reload after a certificate or CA rotation builds a new client.
func acquireAuthServer(ctx caddy.Context, in *Introspection, revocation string, c *Client) (*authServer, error) {
	if in != nil {
		if err := checkEndpoint("introspection", in.Endpoint); err != nil {
			return nil, err
		}
	}
	if revocation != "" {
		if err := checkEndpoint("revocation", revocation); err != nil {
			return nil, err
		}
	}
	t, err := c.tlsConfig(ctx.Logger())
	if err != nil {
		return nil, err
	}
	files, err := t.Digest()
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if c.SigningKey != "" {
		key, err := tlsclient.FilesDigest(c.SigningKey)
		if err != nil {
			return nil, fmt.Errorf("client: signing_key: %w", err)
		}
		files += key
	}
	cfg, _ := json.Marshal(struct {
		I *Introspection
		R string
		C *Client
		F string
	}{in, revocation, c, files})
	// The key holds a digest, not the configuration: the configuration may hold a secret.
	sum := sha256.Sum256(cfg)
	key := "accesstoken-as:" + hex.EncodeToString(sum[:])
	v, _, err := authServers.LoadOrNew(key, func() (caddy.Destructor, error) {
		hc, auth, err := c.open(ctx, t)
		if err != nil {
			return nil, err
		}
		s := &authServer{revocationEndpoint: revocation, http: hc, auth: auth, maxSize: c.MaxSize, poolKey: key}
		if s.maxSize <= 0 {
			s.maxSize = defaultMaxResponse
		}
		if in != nil {
			s.introspection = in.Endpoint
			s.cacheTTL = time.Duration(in.CacheTTL)
			if s.cacheTTL <= 0 {
				s.cacheTTL = defaultIntrospectionCacheTTL
			}
			s.cache = newIntrospectionCache(maxCachedIntrospections)
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*authServer), nil
}

func (s *authServer) release() {
	if s != nil {
		_, _ = authServers.Delete(s.poolKey)
	}
}

// checkEndpoint requires an absolute https URL: tokens and client credentials never travel in
// clear text.
func checkEndpoint(name, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%s endpoint %q must be an absolute https URL without userinfo or fragment", name, raw)
	}
	return nil
}

// post sends an authenticated form to endpoint and returns the status and the body (at most
// maxSize bytes; larger is an error, never a truncated parse).
func (s *authServer) post(ctx context.Context, endpoint string, form url.Values) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if err := s.auth.apply(req, form, endpoint, time.Now()); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	body := form.Encode()
	req.Body = io.NopCloser(strings.NewReader(body))
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.maxSize+1))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %s: reading the response: %v", ErrUnavailable, endpoint, err)
	}
	if int64(len(data)) > s.maxSize {
		return 0, nil, fmt.Errorf("%w: %s: the response is larger than %d bytes", ErrUnavailable, endpoint, s.maxSize)
	}
	return resp.StatusCode, bytes.TrimSpace(data), nil
}

package tlsrevocation

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// maxRedirects is how many redirects one fetch follows; each must keep the scheme.
const maxRedirects = 3

// fetcher is the HTTP client of CRL and OCSP fetches: no proxy from the environment, bounded
// time and size, no redirect to another scheme (an https CRL must not come over http).
type fetcher struct {
	client   *http.Client
	maxBytes int64
}

func newFetcher(timeout time.Duration, maxBytes int64, tlsConfig *tls.Config) *fetcher {
	transport := &http.Transport{
		Proxy:                  nil, // revocation data goes straight to the CA's servers
		DialContext:            (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        tlsConfig,
		TLSHandshakeTimeout:    timeout,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           50,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
	}
	return &fetcher{
		maxBytes: maxBytes,
		client: &http.Client{
			Transport: transport,
			Timeout:   timeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) > maxRedirects {
					return fmt.Errorf("more than %d redirects", maxRedirects)
				}
				if req.URL.Scheme != via[0].URL.Scheme {
					return fmt.Errorf("redirect from %s to %s refused: another scheme", via[0].URL.Scheme, req.URL.Scheme)
				}
				return nil
			},
		},
	}
}

// errNotHTTP marks a URL the verifier does not fetch (ldap:, file:, ...).
var errNotHTTP = errors.New("not an http or https URL")

// checkURL accepts absolute http and https URLs with a host and without user information.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %w", clip(raw), err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: %w", clip(raw), errNotHTTP)
	}
	if u.Host == "" || u.User != nil {
		return fmt.Errorf("%q: an http(s) URL needs a host and no user information", clip(raw))
	}
	return nil
}

// get fetches a CRL.
func (f *fetcher) get(ctx context.Context, rawURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/pkix-crl, application/x-pkcs7-crl, */*")
	return f.do(req)
}

// post sends an OCSP request (RFC 6960 A.1).
func (f *fetcher) post(ctx context.Context, rawURL string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	return f.do(req)
}

func (f *fetcher) do(req *http.Request) ([]byte, error) {
	if err := checkURL(req.URL.String()); err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if resp.ContentLength > f.maxBytes {
		return nil, fmt.Errorf("response is %d bytes, limit is %d", resp.ContentLength, f.maxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	if int64(len(body)) > f.maxBytes {
		return nil, fmt.Errorf("response is larger than %d bytes", f.maxBytes)
	}
	return body, nil
}

// clip shortens a string for a log line or an error.
func clip(s string) string {
	const n = 256
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

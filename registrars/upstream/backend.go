package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obresponse"
	"github.com/dcrgate/dcrgate/internal/recorder"
)

// RegistrarCallVar is the Caddy variable set on the registrar's requests to the backend.
const RegistrarCallVar = "dcr_registrar_call"

// backendResponse is a recorded answer of the backend.
type backendResponse struct {
	status int
	header http.Header
	body   []byte
}

// call sends one JSON request to the backend through the next handler and records the answer.
// The request is derived from the TPP's (so Caddy's request context, Host and TLS state, which
// reverse_proxy turns into X-Forwarded-*, carry over) but has its own method, path, headers and
// body: nothing the TPP sent reaches the backend except through the checked metadata.
func (u *Upstream) call(ctx context.Context, x *dcr.Exchange, backend dcr.Backend, method, path, token string, body map[string]any) (*backendResponse, error) {
	if backend == nil {
		return nil, errors.New("upstream registrar: no next handler to reach the backend")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(u.Timeout))
	defer cancel()
	req := x.Request.Clone(ctx)
	target, err := url.Parse(path)
	if err != nil {
		return nil, badGateway(err, "the backend registration path is not valid")
	}
	req.Method = method
	req.URL.Path, req.URL.RawPath, req.URL.RawQuery = target.Path, target.RawPath, target.RawQuery
	req.RequestURI = target.RequestURI()
	req.Header = http.Header{"Accept": {"application/json"}}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Body, req.ContentLength, req.GetBody = http.NoBody, 0, nil
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Body, req.ContentLength = readCloser{bytes.NewReader(b)}, int64(len(b))
	}
	// Marks the call for matchers after dcr (`not vars dcr_registrar_call true`), so that the
	// backend's registration paths can be closed to everyone but the registrar.
	caddyhttp.SetVar(req.Context(), RegistrarCallVar, "true")
	rec := recorder.New(u.MaxResponseSize)
	if err := backend.ServeHTTP(rec, req); err != nil {
		// reverse_proxy found no upstream, or the connection failed.
		return nil, dcr.Unavailable(err, "the authorization server is unavailable")
	}
	if rec.Overflowed() {
		return nil, badGateway(errors.New("backend answer larger than max_size"), "the authorization server's answer is too large")
	}
	return &backendResponse{status: rec.Status(), header: rec.Header(), body: rec.Body()}, nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// rfc7591Code is what an error code the gateway passes through may look like.
var rfc7591Code = regexp.MustCompile(`^[a-z_]{1,64}$`)

// maxPassedDescription bounds a backend error_description shown to the TPP.
const maxPassedDescription = 300

// rejection turns a backend refusal into the TPP's answer: a 400 with an RFC 7591 error is the
// TPP's to see (the backend judged the metadata); anything else is the gateway's problem with
// the backend and a 502 (or 503 when the backend says it is unavailable).
func (u *Upstream) rejection(resp *backendResponse, what string) *dcr.Error {
	cause := fmt.Errorf("backend %s answered %d", what, resp.status)
	if resp.status == http.StatusBadRequest {
		if code, desc, ok := rfc7591Error(resp); ok {
			return &dcr.Error{Status: http.StatusBadRequest, Code: code, Description: desc, Cause: cause}
		}
	}
	if resp.status == http.StatusServiceUnavailable {
		return dcr.Unavailable(cause, "the authorization server is unavailable")
	}
	return badGateway(cause, "the authorization server refused the %s", what)
}

func rfc7591Error(resp *backendResponse) (code, desc string, ok bool) {
	if !isJSON(resp.header) {
		return "", "", false
	}
	var e struct {
		Code        string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(resp.body, &e) != nil || !rfc7591Code.MatchString(e.Code) {
		return "", "", false
	}
	desc = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, e.Description)
	if len(desc) > maxPassedDescription {
		desc = desc[:maxPassedDescription] + "…"
	}
	return e.Code, desc, true
}

func isJSON(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// created is what the gateway needs from a backend's RFC 7591 answer.
type created struct {
	clientID        string
	token           string
	clientURI       string
	secret          string
	secretExpiresAt any
	issuedAt        int64
	metadata        map[string]any
}

// clientIDPattern: a backend client_id ends up in the gateway's URLs and store keys, so it is
// restricted to URL-safe characters (OB client_ids are at most 36, e.g. UUIDs).
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,255}$`)

func parseAnswer(body []byte) (created, error) {
	var c created
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return c, errors.New("the backend's answer is not a JSON object")
	}
	c.clientID, _ = m["client_id"].(string)
	c.token, _ = m["registration_access_token"].(string)
	c.clientURI, _ = m["registration_client_uri"].(string)
	c.secret, _ = m["client_secret"].(string)
	c.secretExpiresAt = m["client_secret_expires_at"]
	if c.secretExpiresAt == nil {
		c.secretExpiresAt = 0
	}
	if f, ok := m["client_id_issued_at"].(float64); ok {
		c.issuedAt = int64(f)
	}
	// The server-assigned attributes of the answer are not client metadata: the backend's
	// credentials stay in the record's Backend, the rest is the gateway's to present.
	for _, k := range obresponse.ServerAssigned {
		delete(m, k)
	}
	c.metadata = m
	return c, nil
}

// parseCreated reads a 201 of RFC 7591.
func parseCreated(body []byte) (created, error) {
	c, err := parseAnswer(body)
	if err != nil {
		return c, err
	}
	if !clientIDPattern.MatchString(c.clientID) {
		return c, fmt.Errorf("the backend's client_id is missing or not URL-safe (%d characters)", len(c.clientID))
	}
	if c.clientURI != "" {
		if _, err := clientPath(c.clientURI); err != nil {
			return c, err
		}
	}
	return c, nil
}

// parseUpdated reads a 200 of RFC 7592 PUT, which must be about the same client.
func parseUpdated(body []byte, clientID string) (created, error) {
	c, err := parseAnswer(body)
	if err != nil {
		return c, err
	}
	if c.clientID != clientID {
		return c, errors.New("the backend's answer is about another client")
	}
	return c, nil
}

// clientPath is the path (and query) of a registration_client_uri: the RFC 7592 calls go to
// the next handler like the registration, whatever host the backend put in the URI.
func clientPath(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || !strings.HasPrefix(u.Path, "/") || u.Fragment != "" {
		return "", errors.New("the backend's registration_client_uri is not a usable URL")
	}
	return u.RequestURI(), nil
}

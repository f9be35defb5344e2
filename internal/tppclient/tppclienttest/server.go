// Package tppclienttest runs an mTLS test server with the sandbox's server certificate that
// records every request, and a minimal in-memory registry to answer them. It checks nothing
// about DCR itself (that is the gateway's job); it lets client-side code be tested end to end.
package tppclienttest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/dcrgate/dcrgate/internal/sandbox"
)

// Request is one request the server received.
type Request struct {
	Method        string
	Path          string
	ContentType   string
	Authorization string
	Body          []byte
	// ClientCert is the verified client certificate (nil if none was presented).
	ClientCert *x509.Certificate
}

// Server is an httptest TLS server that requires a client certificate issued by the sandbox CA.
type Server struct {
	*httptest.Server
	mu       sync.Mutex
	requests []Request
}

// NewServer starts a server with the sandbox's server certificate; client certificates are
// verified against ca/bundle.pem. A nil handler means NewRegistry().
func NewServer(t testing.TB, sb *sandbox.Sandbox, h http.Handler) *Server {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(sb.Files.ServerCert, sb.Files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := sb.CertPool()
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = NewRegistry()
	}
	s := &Server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := Request{Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Authorization: r.Header.Get("Authorization"), Body: body}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			rec.ClientCert = r.TLS.PeerCertificates[0]
		}
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		h.ServeHTTP(w, r)
	}))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// Endpoint is the server's /register URL.
func (s *Server) Endpoint() string { return s.URL + "/register" }

// Requests returns a copy of what the server received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Last returns the last request received (zero Request if none).
func (s *Server) Last() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return Request{}
	}
	return s.requests[len(s.requests)-1]
}

// Registry is a trivial RFC 7591/7592 responder: POST /register creates a client, and
// GET/PUT/DELETE /register/{id} need its Bearer token. It does not verify the JWS.
type Registry struct {
	mu      sync.Mutex
	clients map[string]string // client_id -> registration access token
}

// NewRegistry returns an empty Registry.
func NewRegistry() *Registry { return &Registry{clients: map[string]string{}} }

func (g *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	id, hasID := strings.CutPrefix(r.URL.Path, "/register/")
	switch {
	case r.URL.Path == "/register" && r.Method == http.MethodPost:
		id, token := uuid.NewString(), uuid.NewString()
		g.clients[id] = token
		writeJSON(w, http.StatusCreated, map[string]any{
			"client_id": id, "registration_access_token": token,
			"registration_client_uri":    "https://" + r.Host + "/register/" + id,
			"token_endpoint_auth_method": "tls_client_auth",
		})
	case hasID:
		token, ok := g.clients[id]
		if !ok || r.Header.Get("Authorization") != "Bearer "+token {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_token"})
			return
		}
		switch r.Method {
		case http.MethodGet, http.MethodPut:
			writeJSON(w, http.StatusOK, map[string]any{"client_id": id, "registration_client_uri": "https://" + r.Host + "/register/" + id})
		case http.MethodDelete:
			delete(g.clients, id)
			w.WriteHeader(http.StatusNoContent)
		default:
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "method_not_allowed"})
		}
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not_found"})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

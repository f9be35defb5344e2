package gatewaytest

import (
	"crypto"
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSPResponder is a real OCSP responder (RFC 6960, over HTTP POST) for tests: it answers for
// the certificates of one issuer, signs with the issuer's key, says good for every serial it
// was not told is revoked, and can be taken down.
type OCSPResponder struct {
	URL string

	server *httptest.Server
	// Requests counts the OCSP requests received (also while down).
	Requests atomic.Int64

	mu      sync.Mutex
	issuer  *x509.Certificate
	key     crypto.Signer
	revoked map[string]ocsp.Response // by serial, decimal
	down    bool
}

// StartOCSPResponder starts a responder on a free port; SetIssuer must be called before it
// answers (the URL is needed first, to go into the certificates it answers for). It stops
// when the test ends.
func StartOCSPResponder(t testing.TB) *OCSPResponder {
	t.Helper()
	r := &OCSPResponder{revoked: make(map[string]ocsp.Response)}
	r.server = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.server.URL + "/ocsp"
	t.Cleanup(r.server.Close)
	return r
}

// SetIssuer sets the CA the responder answers for and signs with.
func (r *OCSPResponder) SetIssuer(cert *x509.Certificate, key crypto.Signer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.issuer, r.key = cert, key
}

// Revoke makes the responder answer revoked, with reason (RFC 5280 CRLReason), for serial.
func (r *OCSPResponder) Revoke(serial *big.Int, reason int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked[serial.String()] = ocsp.Response{Status: ocsp.Revoked, RevokedAt: time.Now().Add(-time.Minute).UTC().Truncate(time.Second), RevocationReason: reason}
}

// SetDown makes the responder answer 503 to everything (true) or answer again (false).
func (r *OCSPResponder) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

func (r *OCSPResponder) serve(w http.ResponseWriter, req *http.Request) {
	r.Requests.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down || r.issuer == nil {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	if err != nil || req.Method != http.MethodPost {
		_, _ = w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	q, err := ocsp.ParseRequest(body)
	if err != nil {
		_, _ = w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	now := time.Now().UTC().Truncate(time.Second)
	tmpl, ok := r.revoked[q.SerialNumber.String()]
	if !ok {
		tmpl = ocsp.Response{Status: ocsp.Good}
	}
	tmpl.SerialNumber = q.SerialNumber
	tmpl.IssuerHash = q.HashAlgorithm
	tmpl.ThisUpdate = now.Add(-time.Minute)
	tmpl.NextUpdate = now.Add(time.Hour)
	der, err := ocsp.CreateResponse(r.issuer, r.issuer, tmpl, r.key)
	if err != nil {
		_, _ = w.Write(ocsp.InternalErrorErrorResponse)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(der)
}

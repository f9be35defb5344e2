package caddymodule

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/manage"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// serveDCR runs one DCR call through the pipeline and writes the answer. Every rejection is
// an RFC 7591 JSON error; nothing is stored unless every check passed.
func (h *Handler) serveDCR(w http.ResponseWriter, r *http.Request, op dcr.Operation, clientID string, next caddyhttp.Handler) {
	start := time.Now()
	x := &dcr.Exchange{
		Operation:   op,
		Request:     r,
		ClientID:    clientID,
		Now:         start,
		EndpointURL: h.endpointURL(r),
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		x.ClientCert = r.TLS.PeerCertificates[0]
	}
	var raw pooledBody
	defer raw.release() // once the answer is written
	status, body, err := h.run(x, next, &raw)
	var e *dcr.Error
	if err != nil {
		e = dcr.AsError(err)
		status = e.Status
	}
	if op == dcr.OpRegister && body != nil {
		clientID, _ = body["client_id"].(string)
	}
	h.metrics.requests.WithLabelValues(string(op), outcomeOf(status), errorLabel(e)).Inc()
	h.audit.record(x, clientID, status, e, time.Since(start))
	if e != nil {
		e.Write(w)
		return
	}
	writeJSON(w, status, body)
}

// labelledCodes are the error codes a metric label may carry; anything else (a code an
// upstream backend made up, say) is "other", so the label's values stay a small fixed set.
var labelledCodes = map[string]bool{
	dcr.CodeInvalidRedirectURI: true, dcr.CodeInvalidClientMetadata: true,
	dcr.CodeInvalidSoftwareStatement: true, dcr.CodeUnapprovedSoftwareStatement: true,
	dcr.CodeInvalidRequest: true, dcr.CodeInvalidToken: true, dcr.CodeInsufficientScope: true,
	dcr.CodeTemporarilyUnavailable: true, dcr.CodeServerError: true, "access_denied": true,
}

// errorLabel is the error code as a metric label; "" for a success.
func errorLabel(e *dcr.Error) string {
	switch {
	case e == nil:
		return ""
	case labelledCodes[e.Code]:
		return e.Code
	default:
		return "other"
	}
}

// run is the pipeline proper, a straight line: the request's facts, the screen (cheap
// refusals), the admission control (a registration or update waits for a slot), the phases
// in order (a management call is decided after the authenticate phase), then the commit: the
// registrar, given the Commit (the one-time keys and the lifecycle event, written with the
// registration), the store and the backend; then the actions after commit. It returns the
// status and body of a success.
func (h *Handler) run(x *dcr.Exchange, next caddyhttp.Handler, raw *pooledBody) (int, map[string]any, error) {
	ctx := x.Request.Context()
	if x.Operation == dcr.OpRegister || x.Operation == dcr.OpUpdate {
		if err := h.readBody(x, raw); err != nil {
			return 0, nil, err
		}
	}
	if x.Operation != dcr.OpRegister {
		if err := h.loadForManagement(x); err != nil {
			return 0, nil, err
		}
	}
	reg := dcr.ForCall(h.store)
	var pending dcr.Pending
	// The cheap refusals first (a replayed jti costs a look-up), then the bound on
	// concurrent calls, then the cryptography. An update is screened once its caller is
	// known (runPhases): a PUT with a wrong registration access token is answered 401,
	// whatever its body, and does not learn whether its jti was used.
	if !screenedAfterAuthentication(x.Operation) {
		if err := h.screen(ctx, x, reg); err != nil {
			return 0, nil, err
		}
	}
	// Past the screen the body is decoded, verified and kept (in the claims, the record):
	// it gets a buffer of its own, and the pooled one goes back.
	x.Body = raw.detach(x.Body)
	if err := h.decodeBody(x); err != nil {
		return 0, nil, err
	}
	if err := h.runPhases(ctx, x, reg, &pending); err != nil {
		return 0, nil, err
	}

	if x.Operation == dcr.OpRead {
		return http.StatusOK, registrationResponse(x.Existing, nil, x.EndpointURL), nil
	}
	if err := h.refuseStruckOff(ctx, x, reg); err != nil {
		return 0, nil, err
	}

	// The commit: the registrar writes the registration with the call's one-time keys and
	// its lifecycle event in one store write; a used key refuses it and nothing is stored.
	c := dcr.Commit{Once: pending.Once, Event: lifecycleEvent(x), Retention: h.historyRetention()}
	var (
		rec   *dcr.Registration
		creds map[string]any
		err   error
	)
	start := time.Now()
	switch x.Operation {
	case dcr.OpRegister:
		rec, creds, err = h.registrar.Register(ctx, x, c, h.store, next)
	case dcr.OpUpdate:
		rec, creds, err = h.registrar.Update(ctx, x, c, h.store, next)
	case dcr.OpDelete:
		err = h.registrar.Delete(ctx, x, c, h.store, next)
	}
	var used *dcr.OnceUsedError
	if errors.As(err, &used) {
		// Refused by the store for a used key: timed as the store's stage, as the claim
		// was before the keys were claimed with the registration.
		h.metrics.observeStage("store", start)
		h.metrics.replays.Inc()
		return 0, nil, used.Rejection()
	}
	h.metrics.observeStage("registrar", start)
	if err != nil {
		return 0, nil, h.storeError(err)
	}
	for _, f := range pending.AfterCommit {
		f()
	}
	switch x.Operation {
	case dcr.OpRegister:
		return http.StatusCreated, registrationResponse(rec, creds, x.EndpointURL), nil
	case dcr.OpUpdate:
		return http.StatusOK, registrationResponse(rec, creds, x.EndpointURL), nil
	default:
		return http.StatusNoContent, nil, nil
	}
}

// screen runs the cheap refusals (dcr.Screener: a jti already used, a consumed single-use
// register token) before the call is
// admitted to the phases.
func (h *Handler) screen(ctx context.Context, x *dcr.Exchange, reg dcr.Registry) error {
	start := time.Now()
	err := h.pipeline.Screen(ctx, x, reg)
	h.metrics.observeStage("screen", start)
	// The screens refuse replays only (a used jti: 400; a consumed single-use token: 401).
	if e := dcr.AsError(err); err != nil && e.Status < http.StatusInternalServerError {
		h.metrics.replays.Inc()
	}
	return err
}

// runPhases runs the phases in order, a registration or update holding an admission slot
// while they run (see admission.go); a management call is decided right after the
// authenticate phase.
func (h *Handler) runPhases(ctx context.Context, x *dcr.Exchange, reg dcr.Registry, pending *dcr.Pending) error {
	if h.admission != nil && takesSlot(x.Operation) {
		release, waited, refusal := h.admission.admit(ctx)
		if refusal != nil {
			return refusal
		}
		defer release()
		// What the screen looked up may have been claimed while the call waited.
		if waited && !screenedAfterAuthentication(x.Operation) {
			if err := h.screen(ctx, x, reg); err != nil {
				return err
			}
		}
	}
	for _, phase := range dcr.Phases {
		if err := h.pipeline.Run(ctx, phase, x, reg, pending, h.metrics.observeStage); err != nil {
			return err
		}
		// Who is calling is settled first, so that an unauthorized management call costs no
		// signature verification or key fetch.
		if phase == dcr.PhaseAuthenticate && x.Operation != dcr.OpRegister {
			if e := manage.Authorize(x.Existing, x.BearerToken, pending.Votes); e != nil {
				return e
			}
			if screenedAfterAuthentication(x.Operation) {
				if err := h.screen(ctx, x, reg); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// screenedAfterAuthentication reports whether op's screen runs after the authenticate phase
// rather than before everything: an update's caller is authenticated by its registration
// access token, which costs a comparison, not a signature verification, so the screen still
// comes before the cryptography.
func screenedAfterAuthentication(op dcr.Operation) bool { return op == dcr.OpUpdate }

// lifecycleEvent is the history event of a successful register, update or delete, written
// with the registration (the store sets its client_id). The audit log line and the Caddy
// event are emitted once the call is answered (auditor.record); a rejection's history event
// is recorded there too, since nothing is written with it.
func lifecycleEvent(x *dcr.Exchange) *dcr.HistoryEvent {
	ev := &dcr.HistoryEvent{Time: time.Now().UTC(), Operation: string(x.Operation), ClientID: x.ClientID}
	switch x.Operation {
	case dcr.OpRegister:
		ev.Event, ev.Status = dcr.EventRegistered, http.StatusCreated
	case dcr.OpUpdate:
		ev.Event, ev.Status = dcr.EventUpdated, http.StatusOK
	default:
		ev.Event, ev.Status = dcr.EventDeleted, http.StatusNoContent
	}
	switch {
	case x.SoftwareStatement != nil:
		ev.SoftwareID, ev.OrgID = x.SoftwareStatement.SoftwareID, x.SoftwareStatement.OrgID
	case x.Existing != nil:
		ev.SoftwareID, ev.OrgID = x.Existing.SoftwareID, x.Existing.OrgID
	}
	return ev
}

// readBody enforces the media type and the size limit. The body is read into raw's pooled
// buffer: a call refused before the screen passes it (a replay, above all) allocates no
// buffer for it.
func (h *Handler) readBody(x *dcr.Exchange, raw *pooledBody) error {
	r := x.Request
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/jose" && mt != "application/jwt") {
		return &dcr.Error{Status: http.StatusUnsupportedMediaType, Code: dcr.CodeInvalidRequest,
			Description: "the request must be a signed JWT sent as application/jose or application/jwt"}
	}
	body, err := raw.readAll(http.MaxBytesReader(nil, r.Body, h.MaxBodySize), r.ContentLength, h.MaxBodySize)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &dcr.Error{Status: http.StatusRequestEntityTooLarge, Code: dcr.CodeInvalidRequest,
				Description: "the request body is larger than " + formatSize(h.MaxBodySize) + ", the limit of this endpoint"}
		}
		return &dcr.Error{Status: http.StatusBadRequest, Code: dcr.CodeInvalidRequest,
			Description: "the request body could not be read", Cause: err}
	}
	x.Body = bytes.TrimSpace(body)
	if len(x.Body) == 0 {
		return dcr.BadMetadata("the request body is empty; a signed registration JWT is required")
	}
	return nil
}

// pooledBody is the request body of one call in a pooled buffer, from readBody until the
// screen passed (detach: the body is copied out) or the answer is written (release). Only the
// screeners read it there, and they keep nothing of it (dcr.Screener may only refuse, from
// what it reads then; PeekReplayKey copies iss and jti out).
type pooledBody struct {
	buf *bytes.Buffer
}

// maxPooledBody is the largest body buffer kept for reuse (the default max_size).
const maxPooledBody = DefaultMaxBodySize

var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readAll is io.ReadAll into the pooled buffer, grown once to the declared Content-Length
// (within the size limit) where it is smaller, instead of io.ReadAll's doubling from 512
// bytes. The length is only a hint: MaxBytesReader enforces the limit, and a body shorter or
// longer than it declared is read the same way. The bytes returned are valid until detach or
// release.
func (p *pooledBody) readAll(r io.Reader, contentLength, limit int64) ([]byte, error) {
	p.buf = bodyBuffers.Get().(*bytes.Buffer)
	p.buf.Reset()
	if contentLength > 0 && contentLength < limit {
		// ReadFrom reads into the free room while it has bytes.MinRead of it: the body and
		// the read that sees EOF fit without a second allocation.
		p.buf.Grow(int(contentLength) + bytes.MinRead)
	}
	_, err := p.buf.ReadFrom(r)
	return p.buf.Bytes(), err
}

// detach returns a copy of body (a view of the pooled buffer) in a buffer of its own, and
// gives the pooled one back.
func (p *pooledBody) detach(body []byte) []byte {
	if p.buf == nil {
		return body
	}
	own := bytes.Clone(body)
	p.release()
	return own
}

// release gives the pooled buffer back; nothing may read the body it held after this.
func (p *pooledBody) release() {
	if p.buf == nil {
		return
	}
	if p.buf.Cap() <= maxPooledBody {
		bodyBuffers.Put(p.buf)
	}
	p.buf = nil
}

// decodeBody decodes the JWS payload once, unverified, so that protections can find the
// software statement inside. It runs after the screen, which needs only the raw body: a
// replay is refused before its payload is decoded.
func (h *Handler) decodeBody(x *dcr.Exchange) error {
	if x.Body == nil {
		return nil
	}
	jws, err := jose.Parse(x.Body)
	if err != nil {
		return dcr.BadMetadata("the request body is not a well-formed compact JWS: %v", err)
	}
	x.RequestJWS, x.UnverifiedClaims = jws, jws.Claims()
	return nil
}

// loadForManagement reads the bearer token and the registration of a read/update/delete. It
// refuses nothing on its own but a malformed Authorization header: the decision is taken once
// the authenticate phase ran (manage.Authorize), and unknown client, deleted client, missing
// or wrong token all get the same 401, so that nobody without the token learns whether a
// client exists.
func (h *Handler) loadForManagement(x *dcr.Exchange) error {
	token, derr := dcr.BearerToken(x.Request)
	if derr != nil {
		return derr
	}
	x.BearerToken = token
	rec, err := h.store.Get(x.Request.Context(), x.ClientID)
	if errors.Is(err, dcr.ErrNotFound) {
		return nil
	}
	if err != nil {
		return h.storeError(err)
	}
	x.Existing = rec
	return nil
}

// formatSize writes a byte count the way a limit is configured: in KiB or MiB when it is a
// whole number of them.
func formatSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	default:
		return strconv.FormatInt(n, 10) + " bytes"
	}
}

// storeError maps store errors to answers: a concurrent change is a conflict the client can
// retry, a vanished record is an invalid token, anything else means the store is down.
func (h *Handler) storeError(err error) error {
	var e *dcr.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, dcr.ErrNotFound):
		return dcr.NotAuthorized("the registration was deleted while the call was processed")
	case errors.Is(err, dcr.ErrConflict):
		return &dcr.Error{Status: http.StatusConflict, Code: dcr.CodeInvalidClientMetadata,
			Description: "the registration was changed concurrently; retry the request", Cause: err}
	default:
		h.metrics.storeErrors.Inc()
		return dcr.Unavailable(err, "the registration store is unavailable")
	}
}

func (h *Handler) endpointURL(r *http.Request) string {
	if h.PublicURL != "" {
		return strings.TrimSuffix(h.PublicURL, "/")
	}
	return "https://" + r.Host + h.Endpoint
}

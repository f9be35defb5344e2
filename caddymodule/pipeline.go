package caddymodule

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obprofile"
	"github.com/dcrgate/dcrgate/dcr/obresponse"
	"github.com/dcrgate/dcrgate/internal/jose"
	"github.com/dcrgate/dcrgate/registrars/local"
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
		Store:       h.store,
		Next:        next.ServeHTTP,
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		x.ClientCert = r.TLS.PeerCertificates[0]
	}
	status, body, err := h.run(x)
	var e *dcr.Error
	if err != nil {
		e = dcr.AsError(err)
		status = e.Status
	}
	h.metrics.requests.WithLabelValues(string(op), outcomeOf(status), errorLabel(e)).Inc()
	h.audit.record(x, status, e, time.Since(start))
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

// run is the pipeline proper; it returns the status and body of a success.
func (h *Handler) run(x *dcr.Exchange) (int, map[string]any, error) {
	ctx := x.Request.Context()
	if x.Operation == dcr.OpRegister || x.Operation == dcr.OpUpdate {
		if err := h.readBody(x); err != nil {
			return 0, nil, err
		}
	}
	if x.Operation != dcr.OpRegister {
		if err := h.loadForManagement(x); err != nil {
			return 0, nil, err
		}
	}
	// Who is calling is settled first, so that an unauthorized management call costs no
	// signature verification or key fetch.
	if err := h.protect(ctx, x, h.protections[:h.afterAuth]); err != nil {
		return 0, nil, err
	}
	if x.Operation != dcr.OpRegister && (x.Existing == nil || x.ManagementRefusal != "" || !x.ManagementAuthorized) {
		return 0, nil, managementRefused(x)
	}
	if err := h.protect(ctx, x, h.protections[h.afterAuth:h.postProfile]); err != nil {
		return 0, nil, err
	}
	if x.Operation == dcr.OpRegister || x.Operation == dcr.OpUpdate {
		start := time.Now()
		err := h.applyProfile(x)
		h.metrics.observeStage("profile", start)
		if err != nil {
			return 0, nil, err
		}
	}
	// Business rules (policy) see the metadata the profile produced and may adjust it.
	if err := h.protect(ctx, x, h.protections[h.postProfile:]); err != nil {
		return 0, nil, err
	}
	if x.Operation == dcr.OpRead {
		return http.StatusOK, registrationResponse(x.Existing, nil, x.EndpointURL), nil
	}
	start := time.Now()
	release, err := h.commitClaims(x)
	h.metrics.observeStage("store", start)
	if err != nil {
		return 0, nil, err
	}
	var (
		rec   *dcr.Registration
		creds map[string]any
	)
	start = time.Now()
	if x.Operation == dcr.OpRegister || x.Operation == dcr.OpUpdate {
		x.Store = namingStore{Store: h.store, names: x.MetadataNames}
	}
	switch x.Operation {
	case dcr.OpRegister:
		rec, creds, err = h.registrar.Register(ctx, x)
	case dcr.OpUpdate:
		rec, creds, err = h.registrar.Update(ctx, x)
	case dcr.OpDelete:
		err = h.registrar.Delete(ctx, x)
	}
	h.metrics.observeStage("registrar", start)
	if err != nil {
		// Nothing was registered, so give the one-time keys back: the client may retry.
		release()
		return 0, nil, h.storeError(err)
	}
	for _, f := range x.AfterCommit {
		f()
	}
	if rec != nil {
		// The answer uses the client's names like every later GET of the stored record.
		rec.MetadataNames = x.MetadataNames
	}
	switch x.Operation {
	case dcr.OpRegister:
		x.ClientID = rec.ClientID
		return http.StatusCreated, registrationResponse(rec, creds, x.EndpointURL), nil
	case dcr.OpUpdate:
		return http.StatusOK, registrationResponse(rec, creds, x.EndpointURL), nil
	default:
		return http.StatusNoContent, nil, nil
	}
}

// readBody enforces the media type and the size limit and decodes the JWS payload, unverified,
// so that protections can find the software statement inside.
func (h *Handler) readBody(x *dcr.Exchange) error {
	r := x.Request
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "application/jose" && mt != "application/jwt") {
		return &dcr.Error{Status: http.StatusUnsupportedMediaType, Code: dcr.CodeInvalidRequest,
			Description: "the request must be a signed JWT sent as application/jose or application/jwt"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, h.MaxBodySize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &dcr.Error{Status: http.StatusRequestEntityTooLarge, Code: dcr.CodeInvalidRequest,
				Description: "the request body is larger than " + formatSize(h.MaxBodySize) + ", the limit of this endpoint"}
		}
		return &dcr.Error{Status: http.StatusBadRequest, Code: dcr.CodeInvalidRequest,
			Description: "the request body could not be read", Cause: err}
	}
	x.Body = []byte(strings.TrimSpace(string(body)))
	if len(x.Body) == 0 {
		return dcr.BadMetadata("the request body is empty; a signed registration JWT is required")
	}
	jws, err := jose.Parse(x.Body)
	if err != nil {
		return dcr.BadMetadata("the request body is not a well-formed compact JWS: %v", err)
	}
	x.RequestJWS, x.UnverifiedClaims = jws, jws.Claims()
	return nil
}

// loadForManagement reads the bearer token and the registration of a read/update/delete and
// records whether the token is the registration's RFC 7592 registration access token. It
// refuses nothing on its own but a malformed Authorization header: the decision is taken once
// the protections ran, and unknown client, deleted client, missing or wrong token all get the
// same 401, so that nobody without the token learns whether a client exists.
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
	x.RegistrationTokenValid = token != "" &&
		subtle.ConstantTimeCompare([]byte(local.HashSecret(token)), []byte(rec.RegistrationTokenHash)) == 1
	x.ManagementAuthorized = x.RegistrationTokenValid
	return nil
}

// managementRefused is the one answer to an unauthorized read/update/delete, with the real
// reason for the audit log: an unknown client first (whatever else is wrong, that is what the
// call ran into), then what a protection refused, then the registration access token.
func managementRefused(x *dcr.Exchange) *dcr.Error {
	switch {
	case x.Existing == nil:
		return dcr.NotAuthorized("no live registration has this client_id (never registered, or deleted)")
	case x.ManagementRefusal != "":
		return dcr.NotAuthorized(x.ManagementRefusal)
	case x.BearerToken == "":
		return dcr.NotAuthorized("no access token was sent")
	default:
		return dcr.NotAuthorized("the access token is not the registration access token of this client_id")
	}
}

func (h *Handler) protect(ctx context.Context, x *dcr.Exchange, ps []namedProtection) error {
	for _, p := range ps {
		start := time.Now()
		err := p.Protect(ctx, x)
		h.metrics.observeStage(p.name, start)
		if err != nil {
			return err
		}
	}
	return nil
}

// applyProfile runs the OB metadata rules over the verified request claims.
func (h *Handler) applyProfile(x *dcr.Exchange) error {
	if x.SoftwareStatement == nil {
		return dcr.BadSoftwareStatement("a verified software statement is required")
	}
	claims := x.RequestClaims
	if claims == nil {
		// signed_request is not configured: the operator accepts unsigned payloads.
		claims = x.UnverifiedClaims
	}
	if x.Operation == dcr.OpUpdate {
		if err := checkUpdateClientID(claims, x.ClientID); err != nil {
			return err
		}
	}
	md, derr := obprofile.Apply(&h.Profile, obprofile.Input{Claims: claims, SSA: x.SoftwareStatement, ClientCert: x.ClientCert})
	if derr != nil {
		return derr
	}
	// What the registry assigns is never taken from the client.
	for _, k := range obresponse.ServerAssigned {
		delete(md, k)
	}
	if x.Operation == dcr.OpUpdate {
		if x.SoftwareStatement.SoftwareID != x.Existing.SoftwareID {
			return dcr.BadMetadata("software_id cannot change on update (registered %q, got %q)", x.Existing.SoftwareID, x.SoftwareStatement.SoftwareID)
		}
		if x.SoftwareStatement.OrgID != x.Existing.OrgID {
			return dcr.BadMetadata("org_id cannot change on update")
		}
	}
	x.Metadata = md
	x.MetadataNames = obprofile.SentNames(claims)
	return nil
}

// checkUpdateClientID: RFC 7592 §2.2 has the client send its client_id in an update, and the
// value must be the client_id being updated; a body naming another client is refused rather
// than silently applied to the one in the path. Omitting it is accepted (OB clients send the
// registration request again, which has none).
func checkUpdateClientID(claims map[string]any, clientID string) error {
	v, ok := claims["client_id"]
	if !ok || v == nil {
		return nil
	}
	s, isString := v.(string)
	if !isString {
		return dcr.BadMetadata("client_id must be a string, not %s", jose.JSONType(v))
	}
	if s != clientID {
		return dcr.BadMetadata("client_id %s of the request does not match the client_id being updated (%s)", quoteShort(s), quoteShort(clientID))
	}
	return nil
}

// quoteShort quotes a client-supplied value for a description, cut short.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "..."
	}
	return strconv.Quote(s)
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

// commitClaims records the request's one-time keys now that every check has passed; the
// returned func gives them back if the registration then fails.
func (h *Handler) commitClaims(x *dcr.Exchange) (func(), error) {
	ctx := x.Request.Context()
	var done []string
	release := func() {
		for _, k := range done {
			if err := h.store.Release(ctx, k); err != nil {
				h.logger.Warn("releasing a one-time key failed", zap.Error(err))
			}
		}
	}
	for _, c := range x.Claims {
		ok, err := h.store.Claim(ctx, c.Key, c.TTL)
		if err != nil {
			release()
			return nil, h.storeError(err)
		}
		if !ok {
			release()
			h.metrics.replays.Inc()
			return nil, c.Reject
		}
		done = append(done, c.Key)
	}
	return release, nil
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

package dcr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error codes of RFC 7591 §3.2.2 and the OBIE DCR profile, plus the RFC 6750 bearer codes used
// on the management endpoints.
const (
	CodeInvalidRedirectURI          = "invalid_redirect_uri"
	CodeInvalidClientMetadata       = "invalid_client_metadata"
	CodeInvalidSoftwareStatement    = "invalid_software_statement"
	CodeUnapprovedSoftwareStatement = "unapproved_software_statement"
	CodeInvalidRequest              = "invalid_request"
	CodeInvalidToken                = "invalid_token"
	CodeInsufficientScope           = "insufficient_scope"
	CodeTemporarilyUnavailable      = "temporarily_unavailable"
	CodeServerError                 = "server_error"
)

// Error is a spec-shaped rejection: the HTTP status and the RFC 7591 JSON body
// {"error", "error_description"}. Every check in the pipeline returns one of these so that
// the handler never has to guess a status from a Go error.
type Error struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Header holds extra response headers (WWW-Authenticate, Allow, Retry-After).
	Header http.Header `json:"-"`
	// Cause is the internal reason, logged but never sent to the client.
	Cause error `json:"-"`
	// Reason is what the audit log records instead of Description when the description is
	// deliberately uninformative (NotAuthorized): the real reason, never sent to the client.
	Reason string `json:"-"`
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s (%v)", e.Code, e.Description, e.Cause)
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Cause }

// Write sends the error as RFC 7591 JSON.
func (e *Error) Write(w http.ResponseWriter) {
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(e)
}

func newErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

// BadMetadata is a 400 invalid_client_metadata.
func BadMetadata(format string, args ...any) *Error {
	return newErr(http.StatusBadRequest, CodeInvalidClientMetadata, format, args...)
}

// BadRedirectURI is a 400 invalid_redirect_uri.
func BadRedirectURI(format string, args ...any) *Error {
	return newErr(http.StatusBadRequest, CodeInvalidRedirectURI, format, args...)
}

// BadSoftwareStatement is a 400 invalid_software_statement.
func BadSoftwareStatement(format string, args ...any) *Error {
	return newErr(http.StatusBadRequest, CodeInvalidSoftwareStatement, format, args...)
}

// UnapprovedSoftwareStatement is a 400 unapproved_software_statement.
func UnapprovedSoftwareStatement(format string, args ...any) *Error {
	return newErr(http.StatusBadRequest, CodeUnapprovedSoftwareStatement, format, args...)
}

// InvalidToken is a 401 with an RFC 6750 WWW-Authenticate challenge. The description is
// deliberately generic at call sites so that no answer tells whether a client exists.
func InvalidToken(format string, args ...any) *Error {
	e := newErr(http.StatusUnauthorized, CodeInvalidToken, format, args...)
	e.Header = http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}
	return e
}

// NotAuthorizedDescription is the one description of every refused management call.
const NotAuthorizedDescription = "the access token or TLS client certificate does not authorize this call for this client_id"

// NotAuthorized is the answer to a read, update or delete that is not authorized: the same
// status, code, description and challenge whether the client is unknown, deleted, or the
// token or certificate is wrong, so that nobody learns whether a client exists. reason is
// the real one, for the audit log only.
func NotAuthorized(reason string) *Error {
	e := InvalidToken(NotAuthorizedDescription)
	e.Reason = reason
	return e
}

// AuditReason is the reason an audit log records for e: Reason when set, else Description.
func (e *Error) AuditReason() string {
	if e.Reason != "" {
		return e.Reason
	}
	return e.Description
}

// Unavailable is a 503: a store, a key source or a backend that is down. Nothing was written.
func Unavailable(cause error, format string, args ...any) *Error {
	e := newErr(http.StatusServiceUnavailable, CodeTemporarilyUnavailable, format, args...)
	e.Cause = cause
	e.Header = http.Header{"Retry-After": {"5"}}
	return e
}

// AsError turns any error into an *Error: an *Error anywhere in the chain is returned as is,
// anything else becomes a 503 (the cause is kept for the log, not sent).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Unavailable(err, "the registration service is temporarily unavailable")
}

// WithCause returns e with its internal cause set; handy for chaining at call sites.
func (e *Error) WithCause(err error) *Error {
	e.Cause = err
	return e
}

// Package recorder keeps a handler's answer in memory, with a bound on its body: for a
// handler that calls the next one in Caddy's chain and needs the whole answer before it can
// answer itself (dcr_discovery rewriting the backend's discovery document, the upstream
// registrar reading the backend's registration answer). A backend that answers more than the
// bound gets a write error and the recording says it overflowed, so nothing unbounded is held.
package recorder

import (
	"bytes"
	"errors"
	"net/http"
)

// ErrTooLarge is what a write past the limit returns.
var ErrTooLarge = errors.New("the answer is larger than the recording limit")

// Recorder is an http.ResponseWriter that keeps the status, the headers and at most limit
// bytes of body.
type Recorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	limit    int64
	overflow bool
}

// New returns a recorder that keeps at most limit bytes of body.
func New(limit int64) *Recorder {
	return &Recorder{header: http.Header{}, limit: limit}
}

// Header returns the headers of the answer, as http.ResponseWriter does.
func (r *Recorder) Header() http.Header { return r.header }

// WriteHeader records the first final status; informational (1xx) ones are not the answer.
func (r *Recorder) WriteHeader(status int) {
	if r.status == 0 && status >= 200 {
		r.status = status
	}
}

// Write keeps p, or refuses it all (ErrTooLarge) when the body would exceed the limit.
func (r *Recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if int64(r.body.Len())+int64(len(p)) > r.limit {
		r.overflow = true
		return 0, ErrTooLarge
	}
	return r.body.Write(p)
}

// Status is the recorded status: 200 when the handler wrote none, as net/http would answer.
func (r *Recorder) Status() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// Body is the recorded body (the part within the limit).
func (r *Recorder) Body() []byte { return r.body.Bytes() }

// Overflowed reports whether the handler wrote more than the limit.
func (r *Recorder) Overflowed() bool { return r.overflow }

// Interface guards
var _ http.ResponseWriter = (*Recorder)(nil)

package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/recorder"
)

// An upstream registrar deletes a client at the backend through the handler after dcr (its
// dcr.Backend, normally reverse_proxy), which exists only inside a request of the dcr route:
// Caddy compiles a route's handler chain per request. The admin endpoint is another server
// with no such chain, so an operator's delete is sent through the dcr handler's own HTTP
// server: an in-process request to {endpoint}/{client_id} whose context carries an
// operatorCall. The dcr handler takes the call before routing (nothing from the network can
// put a value in a request's context) and runs its registrar's Delete with the next handler
// that request got: the same route, the same reverse_proxy, its TLS, load balancing and
// `not vars dcr_registrar_call true` matchers, as the TPP's own DELETE would. The registrar's
// rules apply unchanged: the backend first, then the tombstone; a backend that already lost
// the client (404, or 401 for its token) counts as done, so a retry finishes a delete whose
// tombstone failed; a backend that is down changes nothing (503).

// operatorCallKey is the context key of an operatorCall.
type operatorCallKey struct{}

// operatorCall is one operator deletion on its way through the server to its handler.
type operatorCall struct {
	handler *Handler
	rec     *dcr.Registration
	// taken is set by the handler that runs the call, once (the registrar's own backend
	// request carries the same context through the chain).
	taken atomic.Bool
	err   error
}

// operatorRoute is how a handler's server is reached for operator calls.
type operatorRoute struct {
	srv *caddyhttp.Server
	// lastHost is the Host of the latest DCR call the handler served: one its route takes.
	lastHost atomic.Pointer[string]
}

// sawHost remembers the Host of a DCR call (the hook in ServeHTTP).
func (o *operatorRoute) sawHost(host string) {
	if o == nil || host == "" {
		return
	}
	if cur := o.lastHost.Load(); cur == nil || *cur != host {
		// A copy of its own: taking &host would move every call's host to the heap, changed
		// or not.
		last := host
		o.lastHost.Store(&last)
	}
}

// host is the Host an operator call is sent with, so that the site's host matcher takes it:
// the Host of the latest DCR call (one the route took, whatever the public name is), else
// public_url's host, else the first host the server's routes match, else localhost.
func (o *operatorRoute) host(h *Handler) string {
	if last := o.lastHost.Load(); last != nil {
		return *last
	}
	if h.PublicURL != "" {
		if u, err := url.Parse(h.PublicURL); err == nil && u.Host != "" {
			return u.Host
		}
	}
	for _, route := range o.srv.Routes {
		for _, set := range route.MatcherSetsRaw {
			var hosts []string
			if raw, ok := set["host"]; ok && json.Unmarshal(raw, &hosts) == nil {
				for _, host := range hosts {
					if host != "" && !strings.Contains(host, "*") && !strings.Contains(host, "{") {
						return host
					}
				}
			}
		}
	}
	return "localhost"
}

// deleteThroughServer runs the registrar's Delete of rec inside the handler's route (see
// above). The call is a GET with no credentials, so that a route that does not take it (a
// site whose host the gateway guessed wrong) sends nothing harmful elsewhere; it is then a
// 502 that changed nothing.
func (o *operatorRoute) deleteThroughServer(ctx context.Context, h *Handler, rec *dcr.Registration) (err error) {
	call := &operatorCall{handler: h, rec: rec}
	host := o.host(h)
	req, err := http.NewRequestWithContext(context.WithValue(ctx, operatorCallKey{}, call), http.MethodGet, "http://admin.invalid/", nil)
	if err != nil {
		return err
	}
	req.URL = &url.URL{Path: strings.TrimSuffix(h.Endpoint, "/") + "/" + rec.ClientID}
	req.RequestURI = req.URL.RequestURI()
	req.Host = host
	req.RemoteAddr = "127.0.0.1:0"
	req.Header.Set("User-Agent", "dcrgate admin.api.dcr")
	w := recorder.New(4 << 10)
	func() {
		// A server that is still being provisioned (a reload in progress) has no handler
		// chain yet; that is a 503, not a crash of the admin endpoint.
		defer func() {
			if p := recover(); p != nil {
				err = dcr.Unavailable(fmt.Errorf("serving the operator call: %v", p), "the dcr handler's server is not ready; retry")
			}
		}()
		o.srv.ServeHTTP(w, req)
	}()
	if err != nil {
		return err
	}
	if !call.taken.Load() {
		return &dcr.Error{Status: http.StatusBadGateway, Code: dcr.CodeServerError,
			Description: fmt.Sprintf("the operator call did not reach the dcr handler at %s through server %s with Host %q (it answered %d); "+
				"set public_url on the dcr handler to a URL whose host the site matches (after a DCR call, its Host is used)", h.Endpoint, o.srv.Name(), host, w.Status())}
	}
	return call.err
}

// takeOperatorCall runs an operatorCall addressed to h (the hook at the top of ServeHTTP) and
// reports whether it did.
func (h *Handler) takeOperatorCall(r *http.Request, next caddyhttp.Handler) bool {
	call, ok := r.Context().Value(operatorCallKey{}).(*operatorCall)
	if !ok || call.handler != h || !call.taken.CompareAndSwap(false, true) {
		return false
	}
	x := &dcr.Exchange{Operation: dcr.OpDelete, Request: r, ClientID: call.rec.ClientID, Now: time.Now(),
		EndpointURL: h.endpointURL(r), Existing: call.rec}
	// The history event is the admin audit's (recordAdmin: it names the operator).
	call.err = h.registrar.Delete(r.Context(), x, dcr.Commit{}, h.store, next)
	return true
}

// errLocalBackendRecord: a record with backend data under a local registrar (the registrar
// was changed from upstream): deleting the record would leave its backend client behind.
var errLocalBackendRecord = &dcr.Error{Status: http.StatusNotImplemented, Code: "upstream_registration",
	Description: "this client was registered in a backend by an upstream registrar, and the handler's registrar is now local, which cannot reach the backend: " +
		"delete it at the backend, or configure the upstream registrar again and delete it here"}

// deleteClient deletes one registration as the registrar of e would on the client's own
// DELETE: the local registrar tombstones it, the others go through the handler's server to
// reach the backend. The deletion runs to its end even if the operator goes away, so that a
// disconnect never splits the backend from the store; the registrar's timeouts bound it.
func (e *publishedRegistry) deleteClient(ctx context.Context, rec *dcr.Registration) error {
	ctx = context.WithoutCancel(ctx)
	switch {
	case e.localRegistrar() && len(rec.Backend) > 0:
		return errLocalBackendRecord
	case e.localRegistrar():
		x := &dcr.Exchange{Operation: dcr.OpDelete, ClientID: rec.ClientID, Now: time.Now(), Existing: rec}
		return e.Registrar.Delete(ctx, x, dcr.Commit{}, e.Store, nil)
	case e.viaServer == nil:
		return &dcr.Error{Status: http.StatusNotImplemented, Code: "upstream_registration",
			Description: "this dcr handler runs outside an HTTP server, so its backend cannot be reached from the admin API"}
	}
	return e.viaServer(ctx, rec)
}

// deletionError is the admin API's answer for a failed deletion.
func deletionError(clientID string, err error) *adminError {
	var de *dcr.Error
	switch {
	case errors.Is(err, dcr.ErrNotFound):
		return &adminError{http.StatusNotFound, "not_found", "no live registration with client_id " + fmt.Sprintf("%q", clientID)}
	case errors.Is(err, dcr.ErrConflict):
		return &adminError{http.StatusConflict, "conflict", "the registration kept changing while it was deleted; retry"}
	case errors.As(err, &de):
		return &adminError{de.Status, de.Code, de.Description}
	}
	return storeUnavailable(err)
}

package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dcrgate/dcrgate/dcr"
)

// dcrRoute is what a request to a DCR path asks for: an operation and its client_id, or the
// refusal of a path or method the endpoint does not take.
type dcrRoute struct {
	op       dcr.Operation
	clientID string
	refusal  *dcr.Error
}

// provisionEndpoint sets the endpoint's default and its matcher.
func (h *Handler) provisionEndpoint(ctx caddy.Context) error {
	if h.Endpoint == "" {
		h.Endpoint = "/register"
	}
	h.Endpoint = strings.TrimSuffix(h.Endpoint, "/")
	h.endpointMatcher = caddyhttp.MatchPath{h.Endpoint, h.Endpoint + "/*"}
	if err := h.endpointMatcher.Provision(ctx); err != nil {
		return fmt.Errorf("dcr: endpoint %q: %w", h.Endpoint, err)
	}
	return nil
}

// route says whether r is for the DCR endpoint, and what it asks for.
//
// The endpoint is matched exactly as Caddy's `path` matcher matches {endpoint} and
// {endpoint}/* (it is that matcher): on the decoded path, cleaned (`.` and `..` resolved,
// repeated slashes merged), case-insensitively. So /register, /REGISTER, //register,
// /./register, /x/../register and /register%2F are all the endpoint, and nothing a `path`
// matcher elsewhere in the config would take for it reaches the backend unnoticed.
//
// Below the endpoint, the same cleaned, decoded path is read segment by segment:
//   - {endpoint} or {endpoint}/ is the endpoint itself: POST registers, other methods 405;
//   - {endpoint}/{client_id} (one more segment, a trailing slash ignored) is a client:
//     GET/PUT/DELETE, other methods 405. The client_id keeps its case and is compared
//     exactly: client_ids are case-sensitive, so /register/ABC is not the client abc (it is
//     a client that does not exist, answered like every unauthorized call);
//   - anything deeper ({endpoint}/a/b, or a client_id with an encoded slash) is refused
//     with 404: no DCR resource lives there, and it is not passed on either.
func (h *Handler) route(r *http.Request) (dcrRoute, bool) {
	if !h.matchesEndpoint(r) {
		return dcrRoute{}, false
	}
	segs := pathSegments(caddyhttp.NormalizedPath(r.URL.Path, true))
	base := pathSegments(h.Endpoint)
	// The matcher took the path, so it starts with the endpoint; should a spelling ever
	// make the two disagree, the request is refused rather than passed on.
	if len(segs) < len(base) || !sameSegments(segs[:len(base)], base) {
		return dcrRoute{refusal: h.notADCRPath()}, true
	}
	rest := segs[len(base):]
	switch len(rest) {
	case 0:
		if r.Method == http.MethodPost {
			return dcrRoute{op: dcr.OpRegister}, true
		}
		return dcrRoute{refusal: methodNotAllowed(r.Method, "POST")}, true
	case 1:
		switch r.Method {
		case http.MethodGet:
			return dcrRoute{op: dcr.OpRead, clientID: rest[0]}, true
		case http.MethodPut:
			return dcrRoute{op: dcr.OpUpdate, clientID: rest[0]}, true
		case http.MethodDelete:
			return dcrRoute{op: dcr.OpDelete, clientID: rest[0]}, true
		}
		return dcrRoute{refusal: methodNotAllowed(r.Method, "GET, PUT, DELETE")}, true
	default:
		return dcrRoute{refusal: h.notADCRPath()}, true
	}
}

// matchesEndpoint runs the endpoint matcher. MatchPath reads the request's replacer, which
// Caddy's server always sets; a request from elsewhere (an embedder, a unit test) is matched
// with noRequestReplacer.
func (h *Handler) matchesEndpoint(r *http.Request) bool {
	if _, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); !ok {
		r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, noRequestReplacer))
	}
	match, _ := h.endpointMatcher.MatchWithError(r)
	return match
}

// noRequestReplacer is the replacer of a request that has none, shared: the matcher only
// reads it (ReplaceAll on the endpoint, which validEndpoint keeps free of placeholders), and a
// Replacer is safe for concurrent use; one per request was a tenth of the allocations of a
// replay refused in-process.
var noRequestReplacer = caddy.NewReplacer()

// sameSegments reports whether a and b are the same segments but for case: what comparing
// their lower-cased joins would say (no segment holds a '/', and no rune lowers to one), without
// making the joins.
func sameSegments(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && strings.ToLower(a[i]) != strings.ToLower(b[i]) {
			return false
		}
	}
	return true
}

// pathSegments splits a cleaned path into its segments, ignoring the leading and a trailing
// slash ("/register/abc/" → register, abc).
func pathSegments(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func methodNotAllowed(method, allow string) *dcr.Error {
	return &dcr.Error{Status: http.StatusMethodNotAllowed, Code: dcr.CodeInvalidRequest,
		Description: fmt.Sprintf("method %s is not allowed here (allowed: %s)", method, allow),
		Header:      http.Header{"Allow": {allow}}}
}

func (h *Handler) notADCRPath() *dcr.Error {
	return &dcr.Error{Status: http.StatusNotFound, Code: dcr.CodeInvalidRequest,
		Description: fmt.Sprintf("no registration resource at this path: the endpoint takes POST %s and GET, PUT or DELETE %s/{client_id}", h.Endpoint, h.Endpoint)}
}

// validEndpoint checks the endpoint path: absolute, already clean (no `.`/`..` segment,
// repeated or trailing slash), and free of what the path matcher would read as a wildcard,
// placeholder or escape, so that it names exactly one path.
func validEndpoint(p string) error {
	switch {
	case !strings.HasPrefix(p, "/") || p == "/":
		return fmt.Errorf("dcr: endpoint %q must be a path below / (e.g. /register)", p)
	case strings.ContainsAny(p, "*?[]\\{}%#"):
		return fmt.Errorf("dcr: endpoint %q must be a plain path: no wildcard, placeholder, escape or fragment characters (* ? [ ] \\ { } %% #)", p)
	case caddyhttp.CleanPath(p, true) != p:
		return fmt.Errorf("dcr: endpoint %q must be a clean path (no . or .. segment, no repeated slash); write %q", p, caddyhttp.CleanPath(p, true))
	}
	return nil
}

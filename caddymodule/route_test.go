package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/dcrgate/dcrgate/dcr"
)

// TestRoute: every spelling of the endpoint that Caddy's path matcher takes for {endpoint}
// or {endpoint}/* is a DCR call or refused, never passed on; the client_id keeps its case.
func TestRoute(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := &Handler{}
	if err := h.provisionEndpoint(ctx); err != nil {
		t.Fatal(err)
	}
	const pass = -1
	tests := []struct {
		method, path string
		op           dcr.Operation
		clientID     string
		status       int    // of the refusal; 0 = a DCR call, pass = the next handler
		allow        string // the Allow header of a 405
	}{
		{method: "POST", path: "/register", op: dcr.OpRegister},
		{method: "POST", path: "/register/", op: dcr.OpRegister},
		{method: "POST", path: "//register", op: dcr.OpRegister},
		{method: "POST", path: "///register//", op: dcr.OpRegister},
		{method: "POST", path: "/REGISTER", op: dcr.OpRegister},
		{method: "POST", path: "/Register", op: dcr.OpRegister},
		{method: "POST", path: "/./register", op: dcr.OpRegister},
		{method: "POST", path: "/x/../register", op: dcr.OpRegister},
		{method: "POST", path: "/../register", op: dcr.OpRegister},
		{method: "POST", path: "/register/.", op: dcr.OpRegister},
		{method: "POST", path: "/register/abc/..", op: dcr.OpRegister},
		{method: "POST", path: "/register%2F", op: dcr.OpRegister},
		{method: "POST", path: "/register%2f", op: dcr.OpRegister},
		{method: "POST", path: "/%72egister", op: dcr.OpRegister},
		{method: "POST", path: "/%52EGISTER", op: dcr.OpRegister},
		{method: "GET", path: "/register", status: 405, allow: "POST"},
		{method: "GET", path: "/REGISTER/", status: 405, allow: "POST"},
		{method: "DELETE", path: "//register", status: 405, allow: "POST"},

		{method: "GET", path: "/register/abc", op: dcr.OpRead, clientID: "abc"},
		{method: "GET", path: "/register/AbC", op: dcr.OpRead, clientID: "AbC"},
		{method: "GET", path: "/REGISTER/AbC", op: dcr.OpRead, clientID: "AbC"},
		{method: "GET", path: "//register//AbC", op: dcr.OpRead, clientID: "AbC"},
		{method: "GET", path: "/register/AbC/", op: dcr.OpRead, clientID: "AbC"},
		{method: "GET", path: "/register/./AbC", op: dcr.OpRead, clientID: "AbC"},
		{method: "GET", path: "/register/x/../AbC", op: dcr.OpRead, clientID: "AbC"},
		{method: "GET", path: "/register/%41bC", op: dcr.OpRead, clientID: "AbC"},
		{method: "GET", path: "/register%2FAbC", op: dcr.OpRead, clientID: "AbC"},
		{method: "PUT", path: "/Register/abc", op: dcr.OpUpdate, clientID: "abc"},
		{method: "DELETE", path: "/register//abc", op: dcr.OpDelete, clientID: "abc"},
		{method: "PATCH", path: "/register/abc", status: 405, allow: "GET, PUT, DELETE"},
		{method: "POST", path: "/register/abc", status: 405, allow: "GET, PUT, DELETE"},
		{method: "POST", path: "/REGISTER/abc", status: 405, allow: "GET, PUT, DELETE"},

		// Deeper than a client_id: no DCR resource, refused rather than passed on.
		{method: "GET", path: "/register/a/b", status: 404},
		{method: "DELETE", path: "/register/a%2Fb", status: 404},
		{method: "POST", path: "/REGISTER/a/b/c", status: 404},

		// Not the endpoint: the next handler.
		{method: "POST", path: "/registerx", status: pass},
		{method: "POST", path: "/registration", status: pass},
		{method: "POST", path: "/register.json", status: pass},
		{method: "POST", path: "/regist", status: pass},
		{method: "POST", path: "/api/register", status: pass},
		{method: "POST", path: "/register/../accounts", status: pass},
		{method: "GET", path: "/", status: pass},
		{method: "GET", path: "/accounts", status: pass},
		{method: "GET", path: "/sandbox/jwks/x.json", status: pass},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "https://localhost"+tc.path, nil)
			rt, ok := h.route(r)
			// The contract: handled exactly when Caddy's own path matcher takes the path.
			if m := matches(t, r, "/register", "/register/*"); m != ok {
				t.Fatalf("route handled %v, Caddy's path matcher %v", ok, m)
			}
			switch {
			case tc.status == pass:
				if ok {
					t.Fatalf("handled (%+v), want passed on", rt)
				}
			case !ok:
				t.Fatal("passed on to the next handler")
			case tc.status != 0:
				if rt.refusal == nil || rt.refusal.Status != tc.status || rt.refusal.Code != dcr.CodeInvalidRequest || rt.refusal.Description == "" {
					t.Fatalf("got %+v, want a %d refusal", rt, tc.status)
				}
				if got := rt.refusal.Header.Get("Allow"); got != tc.allow {
					t.Fatalf("Allow %q, want %q", got, tc.allow)
				}
			default:
				if rt.refusal != nil || rt.op != tc.op || rt.clientID != tc.clientID {
					t.Fatalf("got %+v (refusal %v), want %s %q", rt, rt.refusal, tc.op, tc.clientID)
				}
			}
		})
	}
}

// TestRouteCustomEndpoint: a nested endpoint written in mixed case, with a trailing slash.
func TestRouteCustomEndpoint(t *testing.T) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	h := &Handler{Endpoint: "/OB/Register/"}
	if err := h.provisionEndpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := validEndpoint(h.Endpoint); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/ob/register/Abc": "Abc", "/OB//REGISTER/Abc/": "Abc", "/ob/x/../register/%41bc": "Abc"} {
		rt, ok := h.route(httptest.NewRequest("GET", "https://localhost"+path, nil))
		if !ok || rt.refusal != nil || rt.op != dcr.OpRead || rt.clientID != want {
			t.Errorf("%s: %v %+v", path, ok, rt)
		}
	}
	if _, ok := h.route(httptest.NewRequest("POST", "https://localhost/register", nil)); ok {
		t.Error("/register handled with endpoint /OB/Register")
	}
	if rt, ok := h.route(httptest.NewRequest("POST", "https://localhost/ob/register", nil)); !ok || rt.op != dcr.OpRegister {
		t.Errorf("/ob/register: %v %+v", ok, rt)
	}
	if rt, _ := h.route(httptest.NewRequest("GET", "https://localhost/ob/register/a/b", nil)); rt.refusal == nil ||
		!strings.Contains(rt.refusal.Description, "POST /OB/Register and GET, PUT or DELETE /OB/Register/{client_id}") {
		t.Errorf("404 description: %+v", rt.refusal)
	}
}

func matches(t *testing.T, r *http.Request, patterns ...string) bool {
	t.Helper()
	m := caddyhttp.MatchPath(patterns)
	if err := m.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	r = r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer()))
	ok, err := m.MatchWithError(r)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestValidEndpoint(t *testing.T) {
	for _, ok := range []string{"/register", "/ob/v3.2/register", "/Register", "/dcr-register"} {
		if err := validEndpoint(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":               "must be a path below /",
		"register":       "must be a path below /",
		"/a//register":   `must be a clean path (no . or .. segment, no repeated slash); write "/a/register"`,
		"/a/./register":  "must be a clean path",
		"/a/../register": "must be a clean path",
		"/reg*":          "must be a plain path",
		"/{env.PATH}":    "must be a plain path",
		"/reg%2Fister":   "must be a plain path",
		"/reg?x":         "must be a plain path",
	} {
		if err := validEndpoint(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", bad, err, want)
		}
	}
}

// FuzzRoute: for any request path, route handles it exactly when Caddy's path matcher takes
// it for the endpoint, and a client_id it returns is one non-empty segment.
func FuzzRoute(f *testing.F) {
	for _, p := range []string{"/register", "//register/", "/REGISTER/abc", "/register%2Fa%2Fb", "/x/../register/./A", "/registerx", "/%ff/register"} {
		f.Add(p)
	}
	h := &Handler{}
	if err := h.provisionEndpoint(caddy.Context{Context: context.Background()}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path string) {
		r, err := http.NewRequest(http.MethodGet, "https://localhost/", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.URL.Path, r.URL.RawPath = "/"+path, ""
		rt, ok := h.route(r)
		if m := matches(t, r, "/register", "/register/*"); m != ok {
			t.Fatalf("%q: route handled %v, Caddy's path matcher %v", r.URL.Path, ok, m)
		}
		if ok && rt.refusal == nil && (rt.clientID == "" || strings.Contains(rt.clientID, "/")) {
			t.Fatalf("%q: client_id %q", r.URL.Path, rt.clientID)
		}
	})
}

package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/dcrgate/dcrgate/dcr"
)

func init() {
	caddy.RegisterModule(AdminAPI{})
}

// AdminAPI is admin.api.dcr: the operators' view of the registry on Caddy's admin endpoint,
// under /dcr/. It is protected as the admin endpoint is (localhost by default; remote admin
// with Caddy's access control) and has no configuration: Caddy loads every admin.api module.
//
//	GET    /dcr/endpoints                   the dcr handlers of the running config
//	GET    /dcr/clients                     registrations, filtered, one page at a time
//	GET    /dcr/clients/{client_id}         one registration (never a secret, token or hash)
//	DELETE /dcr/clients/{client_id}         delete one (local registrar)
//	GET    /dcr/clients/{client_id}/history its lifecycle and its software_id's rejections
//
// With several dcr handlers, ?endpoint= (and ?server=) choose one; with one, it is the default.
type AdminAPI struct {
	// directory is dcrRegistries unless a test sets its own.
	directory *registryDirectory
}

// CaddyModule returns the Caddy module information.
func (AdminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.dcr",
		New: func() caddy.Module { return &AdminAPI{directory: &dcrRegistries} },
	}
}

// Routes returns the /dcr/ subtree.
func (a *AdminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{{Pattern: "/dcr/", Handler: caddy.AdminHandlerFunc(a.serve)}}
}

// adminError is the admin API's JSON error, shaped like the RFC 7591 errors of the endpoint.
type adminError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func badRequest(format string, args ...any) *adminError {
	return &adminError{http.StatusBadRequest, "invalid_request", fmt.Sprintf(format, args...)}
}

// serve answers every /dcr/ call. Errors are written here as JSON and not returned to Caddy,
// whose own error body has another shape.
func (a *AdminAPI) serve(w http.ResponseWriter, r *http.Request) error {
	status, body := a.route(r)
	if e, ok := body.(*adminError); ok {
		status = e.Status
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(body)
}

// route dispatches by path and method; it returns the status and the JSON body.
func (a *AdminAPI) route(r *http.Request) (int, any) {
	rest := strings.TrimPrefix(r.URL.Path, "/dcr/")
	parts := strings.Split(rest, "/")
	switch {
	case rest == "endpoints":
		if r.Method != http.MethodGet {
			return 0, adminMethodNotAllowed(r)
		}
		return http.StatusOK, a.endpoints()
	case parts[0] == "clients" && len(parts) == 1:
		if r.Method != http.MethodGet {
			return 0, adminMethodNotAllowed(r)
		}
		return a.list(r)
	case parts[0] == "clients" && len(parts) == 2 && parts[1] != "":
		switch r.Method {
		case http.MethodGet:
			return a.show(r, parts[1])
		case http.MethodDelete:
			return a.delete(r, parts[1])
		}
		return 0, adminMethodNotAllowed(r)
	case parts[0] == "clients" && len(parts) == 3 && parts[1] != "" && parts[2] == "history":
		if r.Method != http.MethodGet {
			return 0, adminMethodNotAllowed(r)
		}
		return a.history(r, parts[1])
	}
	return 0, &adminError{http.StatusNotFound, "not_found", "no such admin API resource: " + r.URL.Path}
}

func adminMethodNotAllowed(r *http.Request) *adminError {
	return &adminError{http.StatusMethodNotAllowed, "method_not_allowed", r.Method + " is not allowed on " + r.URL.Path}
}

type endpointView struct {
	Server    string `json:"server"`
	Endpoint  string `json:"endpoint"`
	Registrar string `json:"registrar"`
}

func (a *AdminAPI) endpoints() map[string]any {
	out := []endpointView{}
	for _, e := range a.directory.current() {
		out = append(out, endpointView{Server: e.Server, Endpoint: e.Endpoint, Registrar: e.RegistrarID})
	}
	return map[string]any{"endpoints": out}
}

// registry picks the registry of the request's endpoint/server parameters.
func (a *AdminAPI) registry(q url.Values) (*publishedRegistry, *adminError) {
	e, err := a.directory.selectRegistry(q.Get("server"), q.Get("endpoint"))
	switch {
	case errors.Is(err, errNoRegistry):
		return nil, &adminError{http.StatusNotFound, "no_registry", err.Error()}
	case err != nil:
		return nil, badRequest("%s", err.Error())
	}
	return e, nil
}

// listParams are the query parameters of GET /dcr/clients.
var listParams = map[string]bool{
	"server": true, "endpoint": true, "org_id": true, "software_id": true, "token_endpoint_auth_method": true,
	"status": true, "created_from": true, "created_to": true, "updated_from": true, "updated_to": true,
	"cursor": true, "limit": true,
}

func (a *AdminAPI) list(r *http.Request) (int, any) {
	params := r.URL.Query()
	q, aerr := parseListQuery(params)
	if aerr != nil {
		return 0, aerr
	}
	reg, aerr := a.registry(params)
	if aerr != nil {
		return 0, aerr
	}
	page, err := reg.Store.List(r.Context(), q)
	switch {
	case errors.Is(err, dcr.ErrUnindexedQuery):
		return 0, badRequest("status=deleted cannot be combined with org_id or software_id: deleted registrations are not indexed by them")
	case err != nil:
		return 0, storeUnavailable(err)
	}
	views := make([]clientView, 0, len(page.Registrations))
	for _, rec := range page.Registrations {
		views = append(views, newClientView(rec))
	}
	body := map[string]any{"clients": views}
	if page.Next != "" {
		body["next_cursor"] = page.Next
	}
	return http.StatusOK, body
}

func parseListQuery(params url.Values) (dcr.ListQuery, *adminError) {
	for name, vals := range params {
		if !listParams[name] {
			return dcr.ListQuery{}, badRequest("unknown parameter %q", name)
		}
		if len(vals) != 1 {
			return dcr.ListQuery{}, badRequest("parameter %q given %d times", name, len(vals))
		}
	}
	q := dcr.ListQuery{
		OrgID:      params.Get("org_id"),
		SoftwareID: params.Get("software_id"),
		AuthMethod: params.Get("token_endpoint_auth_method"),
		After:      params.Get("cursor"),
	}
	switch params.Get("status") {
	case "", statusLive:
	case statusDeleted:
		q.Deleted = true
	default:
		return q, badRequest("status must be %q or %q", statusLive, statusDeleted)
	}
	if l := params.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > dcr.MaxListLimit {
			return q, badRequest("limit must be an integer from 1 to %d", dcr.MaxListLimit)
		}
		q.Limit = n
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"created_from", &q.CreatedFrom}, {"created_to", &q.CreatedTo}, {"updated_from", &q.UpdatedFrom}, {"updated_to", &q.UpdatedTo}} {
		v := params.Get(t.name)
		if v == "" {
			continue
		}
		parsed, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return q, badRequest("%s must be an RFC 3339 time (2006-01-02T15:04:05Z)", t.name)
		}
		*t.dst = parsed
	}
	if err := q.Validate(); err != nil {
		if errors.Is(err, dcr.ErrUnindexedQuery) {
			return q, badRequest("status=deleted cannot be combined with org_id or software_id: deleted registrations are not indexed by them")
		}
		return q, badRequest("%s", strings.TrimPrefix(err.Error(), "dcr: "))
	}
	return q, nil
}

// onlyParams refuses parameters other than the registry selectors.
func onlyParams(params url.Values, extra ...string) *adminError {
	for name := range params {
		if name != "server" && name != "endpoint" && !slices.Contains(extra, name) {
			return badRequest("unknown parameter %q", name)
		}
	}
	return nil
}

func (a *AdminAPI) show(r *http.Request, clientID string) (int, any) {
	params := r.URL.Query()
	if aerr := onlyParams(params); aerr != nil {
		return 0, aerr
	}
	reg, aerr := a.registry(params)
	if aerr != nil {
		return 0, aerr
	}
	rec, aerr := lookupClient(r.Context(), reg, clientID)
	if aerr != nil {
		return 0, aerr
	}
	return http.StatusOK, newClientView(rec)
}

func lookupClient(ctx context.Context, reg *publishedRegistry, clientID string) (*dcr.Registration, *adminError) {
	rec, err := reg.Store.Get(ctx, clientID)
	switch {
	case errors.Is(err, dcr.ErrNotFound):
		return nil, &adminError{http.StatusNotFound, "not_found", "no live registration with client_id " + strconv.Quote(clientID)}
	case err != nil:
		return nil, storeUnavailable(err)
	}
	return rec, nil
}

// delete tombstones a registration of a local registrar. An upstream registrar's client also
// lives in the backend, which only the dcr handler can reach (through its reverse_proxy, the
// next handler of the request); the admin endpoint has no such chain, so it refuses rather
// than leave a backend client behind a deleted record.
func (a *AdminAPI) delete(r *http.Request, clientID string) (int, any) {
	params := r.URL.Query()
	if aerr := onlyParams(params); aerr != nil {
		return 0, aerr
	}
	reg, aerr := a.registry(params)
	if aerr != nil {
		return 0, aerr
	}
	rec, aerr := lookupClient(r.Context(), reg, clientID)
	if aerr != nil {
		return 0, aerr
	}
	actor := operatorOf(r)
	if !reg.localRegistrar() || len(rec.Backend) > 0 {
		e := &adminError{http.StatusNotImplemented, "upstream_registration",
			"this client is registered in the backend (registrar " + reg.RegistrarID + "); the admin API cannot delete it there: " +
				"delete it with the client's registration access token (DELETE on the registration endpoint) or at the backend"}
		reg.audit.recordAdmin(r.Context(), dcr.OpDelete, rec, actor, e.Status, e.Code)
		return 0, e
	}
	if err := dcr.TombstoneLatest(r.Context(), reg.Store, rec, maxAdminRetries, dcr.Commit{}); err != nil {
		if errors.Is(err, dcr.ErrNotFound) {
			return 0, &adminError{http.StatusNotFound, "not_found", "no live registration with client_id " + strconv.Quote(clientID)}
		}
		reg.audit.recordAdmin(r.Context(), dcr.OpDelete, rec, actor, http.StatusServiceUnavailable, "temporarily_unavailable")
		return 0, storeUnavailable(err)
	}
	reg.audit.recordAdmin(r.Context(), dcr.OpDelete, rec, actor, http.StatusOK, "")
	return http.StatusOK, map[string]any{"client_id": clientID, "status": statusDeleted}
}

// history answers a client's lifecycle events and the rejections of its software_id, within
// the handler's retention. A deleted client still has its history; its software_id is then
// taken from the history itself.
func (a *AdminAPI) history(r *http.Request, clientID string) (int, any) {
	params := r.URL.Query()
	if aerr := onlyParams(params); aerr != nil {
		return 0, aerr
	}
	reg, aerr := a.registry(params)
	if aerr != nil {
		return 0, aerr
	}
	since := time.Now().Add(-reg.Retention.WithDefaults().MaxAge)
	events, err := reg.Store.History(r.Context(), dcr.HistoryOfClient, clientID, since)
	if err != nil {
		return 0, storeUnavailable(err)
	}
	softwareID, status := "", statusDeleted
	rec, err := reg.Store.Get(r.Context(), clientID)
	switch {
	case err == nil:
		softwareID, status = rec.SoftwareID, statusLive
	case !errors.Is(err, dcr.ErrNotFound):
		return 0, storeUnavailable(err)
	case len(events) == 0:
		return 0, &adminError{http.StatusNotFound, "not_found", "no registration and no history with client_id " + strconv.Quote(clientID)}
	default:
		softwareID = events[len(events)-1].SoftwareID
	}
	rejections := []dcr.HistoryEvent{}
	if softwareID != "" {
		if rejections, err = reg.Store.History(r.Context(), dcr.HistoryOfSoftware, softwareID, since); err != nil {
			return 0, storeUnavailable(err)
		}
	}
	if events == nil {
		events = []dcr.HistoryEvent{}
	}
	if rejections == nil {
		rejections = []dcr.HistoryEvent{}
	}
	return http.StatusOK, map[string]any{"client_id": clientID, "software_id": softwareID, "status": status,
		"events": events, "rejections": rejections}
}

// maxAdminRetries bounds the re-reads of a record that changes while it is deleted.
const maxAdminRetries = 5

func storeUnavailable(err error) *adminError {
	return &adminError{http.StatusServiceUnavailable, "temporarily_unavailable", "the registration store is unavailable: " + err.Error()}
}

// operatorOf names who calls the admin API, as far as the admin endpoint knows: the subject of
// the client certificate of remote admin (whose access control authorized it), else the local
// admin endpoint, which anyone who can reach it may use.
func operatorOf(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return "cert:" + r.TLS.PeerCertificates[0].Subject.String()
	}
	return "local admin"
}

// Interface guards
var _ caddy.AdminRouter = (*AdminAPI)(nil)

// Package caddymodule is the Caddy glue of dcrgate: the http.handlers.dcr handler that hosts
// the DCR pipeline, its Caddyfile directive and its configuration.
package caddymodule

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/manage"
	"github.com/dcrgate/dcrgate/dcr/obprofile"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// DefaultMaxBodySize bounds a registration request body (a JWS with an embedded SSA is a few
// KiB; 64 KiB leaves room without letting anyone stream megabytes at the parser).
const DefaultMaxBodySize = 64 << 10

// Handler is the OB DCR endpoint. It owns POST {endpoint} and GET/PUT/DELETE
// {endpoint}/{client_id}; every other request goes to the next handler untouched.
type Handler struct {
	// Endpoint is the registration path; default "/register". It is matched as Caddy's
	// `path` matcher matches it and {endpoint}/* (see route.go).
	Endpoint string `json:"endpoint,omitempty"`
	// PublicURL is the absolute URL clients use for the endpoint, used to build
	// registration_client_uri; default https://{request host}{endpoint}.
	PublicURL string `json:"public_url,omitempty"`
	// MaxBodySize bounds the request body in bytes; default 64 KiB. Larger bodies get 413.
	// (max_body_size is the previous release's name; see UnmarshalJSON.)
	MaxBodySize int64 `json:"max_size,omitempty"`
	// ProtectionsRaw are the checks (dcr.protections.*). Each declares its phase (see the
	// dcr package: authenticate, verify_statement, verify_request, profile, decide); the
	// phases run in that order, the protections of a phase in the order configured here,
	// after the built-in steps of the phase (the registration access token; the update rules
	// and the OB profile rules).
	ProtectionsRaw []json.RawMessage `json:"protections,omitempty" caddy:"namespace=dcr.protections inline_key=protection"`
	// DefaultPolicy runs the embedded default registration policy (policies/ in the
	// repository: org_status, software_mode per environment, at most 10
	// registrations per software_id, org allow/deny lists) when no `policy` protection is
	// configured; default true. False (Caddyfile: `default_policy off`) runs no policy. The
	// policy module (dcr.protections.policy) is loaded by its ID: a build that leaves it out
	// (imports.go and cmd/caddy include it) must turn the default off.
	DefaultPolicy *bool `json:"default_policy,omitempty"`
	// Profile configures the OB DCR v3.2 metadata rules.
	Profile obprofile.Config `json:"profile,omitzero"`
	// StorageRaw is the registration store (dcr.storage.*); default bolt (one file in Caddy's data directory).
	// The module is named by "storage" ("backend" in the previous release).
	StorageRaw json.RawMessage `json:"storage,omitempty" caddy:"namespace=dcr.storage inline_key=storage"`
	// RegistrarRaw turns checked requests into registrations (dcr.registrars.*); default local.
	RegistrarRaw json.RawMessage `json:"registrar,omitempty" caddy:"namespace=dcr.registrars inline_key=registrar"`
	// History bounds the per-client and per-software histories admin.api.dcr shows.
	History *HistoryConfig `json:"history,omitempty"`
	// MaxConcurrent bounds the registrations and updates that run the pipeline's phases at
	// once; default 2 × GOMAXPROCS. A call that finds no free slot within QueueTimeout is
	// answered 503 temporarily_unavailable with Retry-After, before any cryptography (see
	// admission.go). Reads and deletes are not bounded.
	MaxConcurrent int `json:"max_concurrent,omitempty"`
	// QueueTimeout is how long a call waits for a slot; default 1s.
	QueueTimeout caddy.Duration `json:"queue_timeout,omitempty"`

	// endpointMatcher is Caddy's path matcher for {endpoint} and {endpoint}/*: every path
	// it takes is a DCR path (see route.go), so that no spelling of the endpoint that a
	// `path` matcher elsewhere in the config would take reaches the backend unnoticed.
	endpointMatcher caddyhttp.MatchPath
	// protections are the configured ones (and the default policy), in configuration order.
	protections []dcr.Step
	// pipeline is every step, built-in ones included, grouped by phase.
	pipeline  *dcr.Pipeline
	store     dcr.Store
	registrar dcr.Registrar
	logger    *zap.Logger
	metrics   *dcrMetrics
	audit     *auditor
	admission *admission
	// withdrawProfile takes the profile published for dcr_discovery back (see dcrProfiles).
	withdrawProfile func()
	// withdrawRegistry takes the registry published for admin.api.dcr back (see dcrRegistries).
	withdrawRegistry func()
	// operator reaches this handler's server for admin.api.dcr's deletions (admin_backend.go).
	operator *operatorRoute
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.dcr",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision loads the guest modules.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	h.metrics = newDCRMetrics(ctx.GetMetricsRegistry())
	h.audit = &auditor{log: h.logger.Named(AuditLoggerName), ctx: ctx}
	if events, err := ctx.AppIfConfigured("events"); err == nil && events != nil {
		h.audit.events, _ = events.(*caddyevents.App)
	}
	if err := h.provisionEndpoint(ctx); err != nil {
		return err
	}
	if h.MaxBodySize == 0 {
		h.MaxBodySize = DefaultMaxBodySize
	}
	h.provisionAdmission()
	h.Profile.SetDefaults()
	h.withdrawProfile = dcrProfiles.publish(ctx, h.Endpoint, h.PublicURL, h.Profile)

	// The protections are given the effective profile (the policy shows it to Rego as
	// data.dcrgate.profile).
	guests := ctx.WithValue(obprofile.ContextKey, &h.Profile)
	mods, err := guests.LoadModule(h, "ProtectionsRaw")
	if err != nil {
		return fmt.Errorf("loading protections: %w", err)
	}
	for _, m := range mods.([]any) {
		id := string(m.(caddy.Module).CaddyModule().ID)
		p, ok := m.(dcr.Protection)
		if !ok {
			return fmt.Errorf("module %s is not a dcr.Protection (it needs Phase() dcr.Phase and Protect(ctx, *dcr.Exchange, dcr.Registry) (dcr.Result, error); see docs/architecture.md)", id)
		}
		h.protections = append(h.protections, dcr.Step{Name: id[strings.LastIndex(id, ".")+1:], Protection: p})
		if c, ok := m.(dcr.Companions); ok {
			h.protections = append(h.protections, c.CompanionSteps()...)
		}
	}
	if err := h.addDefaultPolicy(guests); err != nil {
		return err
	}
	if err := h.buildPipeline(); err != nil {
		return err
	}

	if err := h.provisionStore(ctx); err != nil {
		return err
	}

	if h.RegistrarRaw == nil {
		h.RegistrarRaw = caddyconfig.JSONModuleObject(struct{}{}, "registrar", "local", nil)
	}
	mod, err := ctx.LoadModule(h, "RegistrarRaw")
	if err != nil {
		return fmt.Errorf("loading registrar: %w", err)
	}
	if h.registrar, _ = mod.(dcr.Registrar); h.registrar == nil {
		return fmt.Errorf("registrar module %T is not a dcr.Registrar", mod)
	}
	h.audit.history = &historyKeeper{store: h.store, keep: h.historyRetention(), logger: h.logger}
	h.withdrawRegistry = dcrRegistries.publishHandler(ctx, h)
	return nil
}

// buildPipeline groups the built-in steps and the protections by phase. The built-in steps
// come first in their phases; NewPipeline keeps the order within a phase and refuses a
// protection that declares no known phase.
func (h *Handler) buildPipeline() error {
	steps := append([]dcr.Step{
		{Name: "registration_token", Protection: manage.RegistrationTokenStep{}},
		{Name: "update_rules", Protection: manage.UpdateStep{}},
		{Name: "profile", Protection: obprofile.Step{Config: &h.Profile}},
	}, h.protections...)
	p, err := dcr.NewPipeline(steps...)
	if err != nil {
		return fmt.Errorf("dcr: %w", err)
	}
	h.pipeline = p
	return nil
}

// addDefaultPolicy loads the embedded default policy set unless a policy is configured or
// the default is turned off.
func (h *Handler) addDefaultPolicy(ctx caddy.Context) error {
	if h.DefaultPolicy != nil && !*h.DefaultPolicy {
		return nil
	}
	for _, p := range h.protections {
		if p.Name == "policy" {
			return nil
		}
	}
	mod, err := ctx.LoadModuleByID("dcr.protections.policy", json.RawMessage("{}"))
	if err != nil {
		return fmt.Errorf("loading the default policy: %w", err)
	}
	p, ok := mod.(dcr.Protection)
	if !ok {
		return fmt.Errorf("module dcr.protections.policy is not a dcr.Protection")
	}
	h.protections = append(h.protections, dcr.Step{Name: "policy", Protection: p})
	return nil
}

// provisionStore loads the store module, unless one was set directly (in-process tests and
// embedders that bring their own store).
func (h *Handler) provisionStore(ctx caddy.Context) error {
	if h.store != nil {
		return nil
	}
	if h.StorageRaw == nil {
		h.StorageRaw = caddyconfig.JSONModuleObject(map[string]any{"check_caddy_storage": true}, "storage", "bolt", nil)
	}
	mod, err := ctx.LoadModule(h, "StorageRaw")
	if err != nil {
		return fmt.Errorf("loading storage: %w", err)
	}
	if h.store, _ = mod.(dcr.Store); h.store == nil {
		return fmt.Errorf("storage module %T is not a dcr.Store", mod)
	}
	return nil
}

// Validate checks the configuration as a whole.
func (h *Handler) Validate() error {
	if err := validEndpoint(h.Endpoint); err != nil {
		return err
	}
	if h.MaxBodySize < 0 {
		return errors.New("dcr: max_size must not be negative")
	}
	if err := h.validateAdmission(); err != nil {
		return err
	}
	if err := h.Profile.Validate(); err != nil {
		return fmt.Errorf("dcr: profile: %w", err)
	}
	has := map[string]bool{}
	for _, p := range h.protections {
		has[p.Name] = true
	}
	// Every OB registration is tied to a software statement: its software_id and org_id key
	// the record, and the request keys come from it.
	if !has["software_statement"] {
		return errors.New("dcr: the software_statement protection is required (OB registrations are made with a directory-signed software statement)")
	}
	if !has["signed_request"] {
		h.logger.Warn("signed_request protection is not configured: registration requests are accepted unsigned, which OB DCR v3.2 forbids")
	}
	if !has["mtls"] {
		h.logger.Warn("mtls protection is not configured: registrations are not bound to a TLS client certificate")
	}
	return nil
}

// Cleanup withdraws the profile published for dcr_discovery; guest modules are cleaned up by
// Caddy.
func (h *Handler) Cleanup() error {
	if h.withdrawProfile != nil {
		h.withdrawProfile()
	}
	if h.withdrawRegistry != nil {
		h.withdrawRegistry()
	}
	return nil
}

// ServeHTTP routes DCR calls to the pipeline and everything else to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.takeOperatorCall(r, next) {
		return nil
	}
	rt, ok := h.route(r)
	if !ok {
		return next.ServeHTTP(w, r)
	}
	h.operator.sawHost(r.Host)
	if rt.refusal != nil {
		rt.refusal.Write(w)
		return nil
	}
	h.serveDCR(w, r, rt.op, rt.clientID, next)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// Package policy is the dcr.protections.policy protection: registration business rules in
// Rego (Open Policy Agent, embedded), evaluated after every cryptographic and OB profile check
// has passed, with the input and decision contract documented in docs/policies.md.
package policy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obprofile"
)

func init() {
	caddy.RegisterModule(Policy{})
}

// DefaultTimeout bounds one evaluation. The default set decides in tens of microseconds; a
// policy that needs more than this is looping or misbehaving, and the request fails closed.
const DefaultTimeout = 100 * time.Millisecond

// Policy evaluates a Rego policy set on every DCR call and enforces its decision: a denial is
// a 400 (403 on read/delete) with the decision's error; an error, a timeout or an undefined or
// malformed decision is a 503 (fail closed). Allowed decisions may narrow the metadata to
// register (OverridableFields).
type Policy struct {
	// Defaults includes the embedded default policy set (policies/ in the repository) and its
	// data; default true. Set false to run only Modules.
	Defaults *bool `json:"defaults,omitempty"`
	// Modules are Rego v1 files or directories (walked for *.rego, *_test.rego skipped), or
	// embedded:<path> for an embedded file (e.g. embedded:examples/org_scope_ceilings.rego).
	Modules []string `json:"modules,omitempty"`
	// Data are JSON or YAML data documents (files or directories), deep-merged at the root of
	// data over the defaults' data.json, later ones winning.
	Data []string `json:"data,omitempty"`
	// Decision is the query of the decision; default data.dcr.decision.
	Decision string `json:"decision,omitempty"`
	// Timeout bounds one evaluation; default 100ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	engine *Engine
	hash   string
	logger *zap.Logger
	// profile is the OB profile of the dcr handler that provisions the policy (nil outside
	// one: the default profile), for data.dcrgate.profile.
	profile *obprofile.Config
}

// CaddyModule returns the Caddy module information.
func (Policy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.protections.policy",
		New: func() caddy.Module { return new(Policy) },
	}
}

// Sources are where the policy set comes from.
func (p *Policy) Sources() Sources {
	return Sources{Defaults: p.Defaults == nil || *p.Defaults, Modules: p.Modules, Data: p.Data, Decision: p.Decision, Profile: p.profile}
}

// Provision reads the policy set and compiles it, or reuses the engine another config (the
// one being replaced by a reload, say) compiled from the same content.
func (p *Policy) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	p.profile = obprofile.FromContext(ctx)
	if p.Timeout == 0 {
		p.Timeout = caddy.Duration(DefaultTimeout)
	}
	b, err := Load(p.Sources())
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	engine, compiled, err := acquireEngine(ctx, b)
	if err != nil {
		return fmt.Errorf("policy: compiling: %w", err)
	}
	p.engine, p.hash = engine, engine.Hash()
	p.logger.Info("registration policy ready",
		zap.String("policy", shortHash(p.hash)),
		zap.Bool("compiled", compiled),
		zap.Strings("modules", engine.Modules()),
		zap.String("decision", b.Decision),
		zap.String("evaluator", evaluatorName(engine)),
		zap.Duration("timeout", time.Duration(p.Timeout)))
	if reason := engine.Fallback(); reason != "" {
		// Not a fault: the same decisions, at topdown's cost (docs/policies.md, "How the
		// decision is evaluated").
		p.logger.Info("registration policy evaluated by OPA's own evaluator, not from its plan",
			zap.String("policy", shortHash(p.hash)), zap.String("reason", reason))
	}
	return nil
}

// evaluatorName names what decides: "plan" (planeval) or "topdown" (OPA's evaluator).
func evaluatorName(e *Engine) string {
	if e.Fallback() != "" {
		return "topdown"
	}
	return "plan"
}

// SetLogger replaces the logger Provision took from the Caddy context: for embedders and
// benchmarks that run the protection outside a Caddy config.
func (p *Policy) SetLogger(l *zap.Logger) { p.logger = l }

// Validate checks the configuration.
func (p *Policy) Validate() error {
	if p.Timeout < 0 {
		return errors.New("policy: timeout must not be negative")
	}
	return nil
}

// Cleanup gives the engine back to the pool.
func (p *Policy) Cleanup() error {
	if p.hash != "" {
		releaseEngine(p.hash)
	}
	return nil
}

// Phase is decide: the policy sees everything the earlier phases verified, and the metadata
// the OB profile produced.
func (p *Policy) Phase() dcr.Phase { return dcr.PhaseDecide }

// Protect decides the call. On register and update x.Metadata is what the OB profile would
// register; an allowed decision's overrides (which may only narrow it, ApplyOverrides) are
// returned for the handler to apply.
func (p *Policy) Protect(ctx context.Context, x *dcr.Exchange, reg dcr.Registry) (dcr.Result, error) {
	rec := p.newRecord(x)
	// Only what the policy set can read is built (and looked up in the store); the debug log
	// of the input shows all of it, as documented.
	logInput := p.logger.Check(zap.DebugLevel, "policy input")
	reads := p.engine.reads
	if logInput != nil {
		reads = everything
	}
	var count int
	var err error
	if reads.Reads("registrations_for_software") {
		if count, err = CountRegistrations(ctx, x, reg); err != nil {
			return dcr.Result{}, p.fail(rec, outcomeError, dcr.Unavailable(err, "the registration store is unavailable"))
		}
	}
	input := inputFor(x, count, reads)
	if reads.Reads("denied") {
		if input["denied"], err = DeniedInput(ctx, x, reg); err != nil {
			return dcr.Result{}, p.fail(rec, outcomeError, dcr.Unavailable(err, "the registration store is unavailable"))
		}
	}
	if logInput != nil {
		logInput.Write(zap.String("decision_id", rec.id), zap.Any("input", input))
	}
	value, err := InputValue(input)
	if err != nil {
		return dcr.Result{}, p.fail(rec, outcomeError, dcr.Unavailable(err, "the registration policy input could not be built"))
	}

	// The budget is the evaluation's alone: the store count and the input are done, and an
	// overload is refused before the pipeline by the admission control, not here.
	evalCtx, cancel := context.WithTimeout(ctx, time.Duration(p.Timeout))
	start := time.Now()
	d, err := p.engine.Decide(evalCtx, value)
	rec.eval = time.Since(start)
	timedOut := errors.Is(evalCtx.Err(), context.DeadlineExceeded)
	cancel()
	v := Judge(x.Operation, x.Metadata, d, err, timedOut)
	rec.decision = v.Decision
	if v.Err != nil {
		return dcr.Result{}, p.fail(rec, v.Outcome, v.Err)
	}
	p.log(rec, v.Outcome, nil)
	return dcr.Result{Overrides: v.Overrides}, nil
}

// fail logs the refusal e, with its cause when no decision could be made (a 503: fail
// closed), and returns it.
func (p *Policy) fail(rec *record, outcome string, e *dcr.Error) *dcr.Error {
	p.log(rec, outcome, e.Cause)
	return e
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Interface guards
var (
	_ caddy.Provisioner  = (*Policy)(nil)
	_ caddy.Validator    = (*Policy)(nil)
	_ caddy.CleanerUpper = (*Policy)(nil)
	_ dcr.Protection     = (*Policy)(nil)
)

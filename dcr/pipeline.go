// Package dcr is the protocol core of dcrgate, free of Caddy: the registration model, the
// RFC 7591 errors, the store interface and the pipeline contract below. The rule families
// live in its subpackages (ssa, envelope, obprofile, manage, secret, ...); the Caddy
// modules in caddymodule/, plugins/ and registrars/ are adapters around them.
//
// # The pipeline of one DCR call
//
// The handler (http.handlers.dcr) routes the call, reads the request's facts into an
// Exchange (body, bearer token, the stored registration of a management call) and then runs
// the phases below in this order. Each phase is a list of steps: the built-in ones first,
// then the configured protections that declare that phase, in configuration order.
//
//	authenticate      who calls. Built in: the RFC 7592 registration access token
//	                  (manage.RegistrationTokenStep). Protections: mtls, access_token.
//	                  On read/update/delete the handler then decides the call with
//	                  manage.Authorize (the votes' one rule) before anything else runs.
//	verify_statement  the software statement: software_statement.
//	verify_request    the signed request, whose keys and iss come from the verified SSA:
//	                  signed_request.
//	profile           built in: the update rules (manage.UpdateStep) and the OB DCR v3.2
//	                  metadata rules (dcr/obprofile), on register and update.
//	decide            business rules: policy (Rego), which may deny or narrow the metadata.
//
// Before the first phase the handler screens the call: a protection that can refuse it with
// a cheap look-up (a Screener: signed_request refuses a jti already used) does so before the
// call is admitted (a bound on concurrent calls) and before any cryptography.
//
// Then, on register/update/delete, the commit: the registrar is given the exchange, a Commit
// (the one-time keys every phase returned and the call's lifecycle event), the store and the
// backend, and writes the registration with the commit in one store transaction (a key
// already used refuses the write, nothing is written, and the call gets the key's
// rejection); the actions after commit run, and the handler answers. Nothing calls back into
// the handler.
//
// Results, not shared writes: a protection returns a Result and never writes the Exchange.
// At the end of each phase the handler copies what the phase verified into the Exchange
// field that phase owns (see Result); a protection therefore sees what earlier phases
// verified and nothing of its own phase. A field returned in a phase that does not own it,
// or by two protections, fails the call closed (503): it is a bug of a protection.
//
// Protections read the registry through Registry, a read-only view; only the registrar
// writes registrations, and the one-time keys are claimed with them.
//
// # Adding a protection
//
// A protection is a Caddy module in the dcr.protections namespace that implements
// Protection. It states the phase it runs in with Phase (pick the first phase whose
// results it needs are all verified: a check of the verified SSA goes in verify_request or
// later, a check of the metadata to register in decide) and returns from Protect:
//
//   - a *Error to reject the call (any other error is an outage: 503);
//   - what it verified, in the fields its phase owns;
//   - Once keys, to be claimed only if every check passes (a replay cache, a single-use
//     token; check cheap look-ups with Registry.Seen first, to refuse a replay before any
//     cryptography);
//   - AfterCommit actions, run once the registration is stored (say, revoke a used token);
//   - in the authenticate phase, on read/update/delete, a Vote.
//
// A management call is authorized iff the client exists, no vote refuses it and at least
// one grants it (manage.Authorize). The registration access token is the built-in grant;
// a protection that authenticates the caller another way grants, one that finds the caller
// wrong refuses. A refusal is a vote, not an error, so every authenticating step still runs
// and the answer (dcr.NotAuthorized) is the same for every reason and for unknown clients;
// the reason goes to the audit log only. Return an error only when the check could not be
// made (503), and make that happen for known and unknown clients alike.
//
// Register the module with caddy.RegisterModule; the dcr directive then takes it by its
// name inside the dcr block, like the built-in ones.
package dcr

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Phase is a stage of the pipeline; phases run in the order of Phases.
type Phase string

// The phases, in order.
const (
	PhaseAuthenticate    Phase = "authenticate"
	PhaseVerifyStatement Phase = "verify_statement"
	PhaseVerifyRequest   Phase = "verify_request"
	PhaseProfile         Phase = "profile"
	PhaseDecide          Phase = "decide"
)

// Phases are the phases in the order they run.
var Phases = []Phase{PhaseAuthenticate, PhaseVerifyStatement, PhaseVerifyRequest, PhaseProfile, PhaseDecide}

// Valid reports whether p is one of Phases.
func (p Phase) Valid() bool { return slices.Contains(Phases, p) }

// Protection is one check of the pipeline (dcr.protections.*).
type Protection interface {
	// Phase is the phase the protection runs in.
	Phase() Phase
	// Protect checks the call. It returns an *Error to reject it; any other error is
	// treated as the service being unavailable (503). x is read-only.
	Protect(ctx context.Context, x *Exchange, reg Registry) (Result, error)
}

// Companions is a protection that also runs steps in phases other than its own, as one
// configuration: signed_request looks the registering key up in its revoked key sets on
// management calls, in authenticate. The handler adds them right after the protection.
type Companions interface {
	CompanionSteps() []Step
}

// Screener is implemented by a protection that can refuse some calls cheaply, before any
// phase runs: the handler screens a call (Pipeline.Screen) before it admits it to the phases
// and their cryptography, so that a replay costs a look-up rather than two signature checks
// and a policy evaluation. Screen reads only the request's facts and the registry, and runs
// before the handler decodes the body: x.Body is set, x.RequestJWS and x.UnverifiedClaims
// are not yet. It returns a *Error to refuse the call and nil otherwise. It may only refuse:
// what it read is unverified, so it never accepts, returns nothing to commit and writes
// nothing; the phases check everything again. x.Body is lent for the call: the handler
// reuses its buffer once a refused call is answered, so Screen must not keep it (or a slice
// of it, or a string made without copying it) after it returns.
type Screener interface {
	Screen(ctx context.Context, x *Exchange, reg Registry) error
}

// Result is what a protection returns for the handler to record: each verified field is
// owned by one phase (returned in another, it fails the call) and copied into the Exchange
// field of the same name when that phase ends.
type Result struct {
	// Vote is an authenticating step's say on a read/update/delete (authenticate phase;
	// ignored on register).
	Vote Vote
	// AccessTokenClaims → Exchange.AccessTokenClaims (authenticate).
	AccessTokenClaims map[string]any
	// SoftwareStatement → Exchange.SoftwareStatement (verify_statement).
	SoftwareStatement *SoftwareStatement
	// RequestClaims and RequestKeyID → the Exchange's (verify_request).
	RequestClaims map[string]any
	RequestKeyID  string
	// SigningKey → Exchange.SigningKey (verify_request).
	SigningKey *SigningKey
	// Metadata and MetadataNames → the Exchange's (profile).
	Metadata      map[string]any
	MetadataNames map[string][]string
	// Overrides replace fields of Exchange.Metadata in Exchange.AcceptedMetadata (decide).
	// The protection that returns them is responsible for their only narrowing the
	// metadata; two protections overriding the same field fail the call.
	Overrides map[string]any

	// Once are the one-time keys to claim at commit, so that a rejected call uses none.
	Once []OnceClaim
	// AfterCommit run after the registration was stored (any phase).
	AfterCommit []func()
}

// Vote is an authenticating step's say on a management call: a grant, a refusal (with the
// real reason, for the audit log only), or neither (the zero Vote).
type Vote struct {
	Grant   bool
	Refusal string
}

// Grant is the vote of a step that authenticated the caller for the path client.
func Grant() Vote { return Vote{Grant: true} }

// Refuse is the vote of a step that found the caller may not make this call.
func Refuse(reason string) Vote { return Vote{Refusal: reason} }

// Registry is the read-only view of the registrations and one-time keys that protections
// get: only the registrar writes registrations, only the handler claims keys.
type Registry interface {
	// Get returns the live registration, ErrNotFound if there is none.
	Get(ctx context.Context, clientID string) (*Registration, error)
	// CountBySoftware counts the live registrations of softwareID other than except ("" =
	// all of them).
	CountBySoftware(ctx context.Context, softwareID, except string) (int, error)
	// Seen reports whether a one-time key is recorded and unexpired.
	Seen(ctx context.Context, key string) (bool, error)
	// Denied is what the deny list says about an org_id and a software_id (see DenyEntry).
	Denied(ctx context.Context, orgID, softwareID string) (Denial, error)
}

// ReadOnly is the Registry view of a store (ForCall is the one a DCR call gets).
func ReadOnly(s Store) Registry { return registryView{s: s} }

// registryView hides the store's writes: it is not a Store, so no type assertion gets them back.
type registryView struct{ s Store }

func (v registryView) Get(ctx context.Context, clientID string) (*Registration, error) {
	return v.s.Get(ctx, clientID)
}

func (v registryView) CountBySoftware(ctx context.Context, softwareID, except string) (int, error) {
	ids, err := v.s.ListBySoftware(ctx, softwareID)
	if err != nil {
		return 0, err
	}
	n := len(ids)
	if except != "" && slices.Contains(ids, except) {
		n--
	}
	return n, nil
}

func (v registryView) Seen(ctx context.Context, key string) (bool, error) {
	return v.s.Seen(ctx, key)
}

func (v registryView) Denied(ctx context.Context, orgID, softwareID string) (Denial, error) {
	entries, err := v.s.Denials(ctx, orgID, softwareID)
	if err != nil {
		return Denial{}, err
	}
	return DenialOf(entries), nil
}

// Backend is the handler after dcr (normally reverse_proxy to the authorization server), as a
// registrar reaches it: Caddy's caddyhttp.Handler has this method.
type Backend interface {
	ServeHTTP(w http.ResponseWriter, r *http.Request) error
}

// Registrar turns a fully checked exchange into a stored registration (dcr.registrars.*):
// local (dcrgate is the registry) or upstream (the client is provisioned in the backend). It
// is the only writer of registrations: it is given the store and the backend for the call,
// and the call's Commit, which it writes with the record (one transaction: a used key
// refuses the write with a *OnceUsedError, returned as is, and nothing is stored). A
// registrar whose work cannot be inside the store's transaction (a backend call) says in its
// documentation in which order it claims the keys and how it gives them back.
type Registrar interface {
	// Register creates the registration of x.AcceptedMetadata, x.MetadataNames and
	// x.SoftwareStatement. It returns the stored record and the one-time credentials to add
	// to the response (client_secret, registration_access_token).
	Register(ctx context.Context, x *Exchange, c Commit, store Store, backend Backend) (*Registration, map[string]any, error)
	// Update replaces x.Existing with x.AcceptedMetadata, x.MetadataNames and
	// x.SoftwareStatement.
	Update(ctx context.Context, x *Exchange, c Commit, store Store, backend Backend) (*Registration, map[string]any, error)
	// Delete removes x.Existing.
	Delete(ctx context.Context, x *Exchange, c Commit, store Store, backend Backend) error
}

// Step is a protection under the name it runs by (its module name), for metrics and errors.
type Step struct {
	Name string
	Protection
}

// Pipeline is the steps of a handler grouped by phase, each phase in the order given.
type Pipeline struct {
	byPhase map[Phase][]Step
}

// NewPipeline groups steps by the phase each declares, keeping their order within a phase.
func NewPipeline(steps ...Step) (*Pipeline, error) {
	p := &Pipeline{byPhase: map[Phase][]Step{}}
	for _, s := range steps {
		ph := s.Phase()
		if !ph.Valid() {
			return nil, fmt.Errorf("protection %s declares phase %q; want one of %s", s.Name, ph, phaseList())
		}
		p.byPhase[ph] = append(p.byPhase[ph], s)
	}
	return p, nil
}

func phaseList() string {
	names := make([]string, len(Phases))
	for i, p := range Phases {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// Steps are the steps of phase ph, in the order they run.
func (p *Pipeline) Steps(ph Phase) []Step { return p.byPhase[ph] }

// Screen runs the Screen of every step that is a Screener, in the order the phases would run
// them, and returns the first refusal (see Screener).
func (p *Pipeline) Screen(ctx context.Context, x *Exchange, reg Registry) error {
	for _, ph := range Phases {
		for _, s := range p.byPhase[ph] {
			if sc, ok := s.Protection.(Screener); ok {
				if err := sc.Screen(ctx, x, reg); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Pending is what the phases returned for the decision and the commit.
type Pending struct {
	// Votes on a management call, in the order the steps ran.
	Votes []Vote
	// Once are the one-time keys to claim at commit, in the order the steps ran.
	Once []OnceClaim
	// AfterCommit run once the registration is stored.
	AfterCommit []func()
}

// Run runs the steps of phase ph in order, then records their results: the verified fields
// in x, the rest in pending. observe, if set, is told how long each step took.
func (p *Pipeline) Run(ctx context.Context, ph Phase, x *Exchange, reg Registry, pending *Pending, observe func(step string, start time.Time)) error {
	steps := p.byPhase[ph]
	// A phase has a step or two: their results stay on the stack.
	var buf [4]Result
	results := buf[:0]
	for _, s := range steps {
		start := time.Now()
		r, err := s.Protect(ctx, x, reg)
		if observe != nil {
			observe(s.Name, start)
		}
		if err != nil {
			return err
		}
		results = append(results, r)
	}
	return record(ph, steps, results, x, pending)
}

// errMisplaced is the cause of failing a call because a protection returned a result its
// phase does not own, or one another protection returned too.
var errMisplaced = errors.New("dcr: a protection returned a result its phase does not own")

// resultField is one of the verified fields of a Result, each owned by one phase.
type resultField int

const (
	fieldAccessTokenClaims resultField = iota
	fieldSoftwareStatement
	fieldRequestClaims
	fieldSigningKey
	fieldMetadata
	numResultFields
)

// resultFields name each verified field (for errors) and the phase that owns it.
var resultFields = [numResultFields]struct {
	name  string
	owner Phase
}{
	fieldAccessTokenClaims: {"access token claims", PhaseAuthenticate},
	fieldSoftwareStatement: {"a software statement", PhaseVerifyStatement},
	fieldRequestClaims:     {"request claims", PhaseVerifyRequest},
	fieldSigningKey:        {"the signing key", PhaseVerifyRequest},
	fieldMetadata:          {"metadata", PhaseProfile},
}

// present reports which verified fields r returns.
func (r *Result) present() [numResultFields]bool {
	return [numResultFields]bool{
		fieldAccessTokenClaims: r.AccessTokenClaims != nil,
		fieldSoftwareStatement: r.SoftwareStatement != nil,
		fieldRequestClaims:     r.RequestClaims != nil || r.RequestKeyID != "",
		fieldSigningKey:        r.SigningKey != nil,
		fieldMetadata:          r.Metadata != nil || r.MetadataNames != nil,
	}
}

// set copies field f of r into x.
func (r *Result) set(f resultField, x *Exchange) {
	switch f {
	case fieldAccessTokenClaims:
		x.AccessTokenClaims = r.AccessTokenClaims
	case fieldSoftwareStatement:
		x.SoftwareStatement = r.SoftwareStatement
	case fieldRequestClaims:
		x.RequestClaims, x.RequestKeyID = r.RequestClaims, r.RequestKeyID
	case fieldSigningKey:
		x.SigningKey = r.SigningKey
	case fieldMetadata:
		x.Metadata, x.MetadataNames = r.Metadata, r.MetadataNames
	}
}

// record copies the results of one phase into x and pending.
func record(ph Phase, steps []Step, results []Result, x *Exchange, pending *Pending) error {
	var setBy [numResultFields]string // the step that returned each field
	var overrides map[string]any
	for i := range results {
		r := &results[i]
		name := steps[i].Name
		for f, ok := range r.present() {
			if !ok {
				continue
			}
			field := resultFields[f]
			if field.owner != ph {
				return fmt.Errorf("%w: %s returned %s in phase %s (it belongs to %s)", errMisplaced, name, field.name, ph, field.owner)
			}
			if prev := setBy[f]; prev != "" {
				return fmt.Errorf("%w: %s and %s both returned %s", errMisplaced, prev, name, field.name)
			}
			setBy[f] = name
			r.set(resultField(f), x)
		}
		// Votes are many by nature: every authenticating step may vote.
		if r.Vote != (Vote{}) {
			if ph != PhaseAuthenticate {
				return fmt.Errorf("%w: %s voted in phase %s (votes belong to %s)", errMisplaced, name, ph, PhaseAuthenticate)
			}
			pending.Votes = append(pending.Votes, r.Vote)
		}
		if len(r.Overrides) > 0 {
			if ph != PhaseDecide {
				return fmt.Errorf("%w: %s returned metadata overrides in phase %s (they belong to %s)", errMisplaced, name, ph, PhaseDecide)
			}
			for k, v := range r.Overrides {
				if _, dup := overrides[k]; dup {
					return fmt.Errorf("%w: two protections override %s", errMisplaced, k)
				}
				if overrides == nil {
					overrides = map[string]any{}
				}
				overrides[k] = v
			}
		}
		pending.Once = append(pending.Once, r.Once...)
		pending.AfterCommit = append(pending.AfterCommit, r.AfterCommit...)
	}
	if ph == PhaseDecide {
		x.AcceptedMetadata = withOverrides(x.Metadata, overrides)
	}
	return nil
}

// withOverrides is md with the overridden fields replaced, as a new map (md itself when
// nothing is overridden).
func withOverrides(md, overrides map[string]any) map[string]any {
	if md == nil || len(overrides) == 0 {
		return md
	}
	out := make(map[string]any, len(md))
	for k, v := range md {
		out[k] = v
	}
	for k, v := range overrides {
		out[k] = v
	}
	return out
}

// EnvelopeClaims of the signed registration request: they are about the JWS, not the
// client, and are never registered.
var EnvelopeClaims = []string{"iss", "aud", "iat", "exp", "nbf", "jti", "software_statement"}

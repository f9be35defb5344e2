package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/dcrgate/dcrgate/dcr"
)

func init() {
	caddy.RegisterModule(phaseProbe{})
}

// phaseProbe is a third-party protection as a test sees it: it runs in the phase it is
// configured with and records what it saw of the exchange.
type phaseProbe struct {
	Name      string `json:"name"`
	PhaseName string `json:"phase"`
}

func (phaseProbe) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "dcr.protections.phase_probe", New: func() caddy.Module { return new(phaseProbe) }}
}

func (p *phaseProbe) Phase() dcr.Phase { return dcr.Phase(p.PhaseName) }

// seen is what a probe saw, by probe name.
type seen struct {
	order                            int
	ssa, request, metadata, accepted bool
}

var (
	probesMu  sync.Mutex
	probeRuns int
	probes    = map[string]seen{}
)

func (p *phaseProbe) Protect(_ context.Context, x *dcr.Exchange, _ dcr.Registry) (dcr.Result, error) {
	probesMu.Lock()
	defer probesMu.Unlock()
	probeRuns++
	probes[p.Name] = seen{order: probeRuns, ssa: x.SoftwareStatement != nil, request: x.RequestClaims != nil,
		metadata: x.Metadata != nil, accepted: x.AcceptedMetadata != nil}
	return dcr.Result{}, nil
}

func probe(name string, phase dcr.Phase) string {
	b, _ := json.Marshal(map[string]string{"protection": "phase_probe", "name": name, "phase": string(phase)})
	return string(b) + ","
}

// TestThirdPartyProtectionsRunInTheirPhase: protections configured before every built-in one
// still run in the phase they declare, after the phases before it and seeing nothing of its
// own; two of one phase run in the order configured.
func TestThirdPartyProtectionsRunInTheirPhase(t *testing.T) {
	extra := probe("decide", dcr.PhaseDecide) + probe("profile", dcr.PhaseProfile) +
		probe("request", dcr.PhaseVerifyRequest) + probe("statement-1", dcr.PhaseVerifyStatement) +
		probe("statement-2", dcr.PhaseVerifyStatement) + probe("authenticate", dcr.PhaseAuthenticate)
	p := newInProcessWith(t, "", extra)
	if w := p.do(http.MethodPost, "/register", p.signedRequest(t, nil), ""); w.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	probesMu.Lock()
	defer probesMu.Unlock()
	want := map[string]seen{
		"authenticate": {},
		"statement-1":  {},
		"statement-2":  {},
		"request":      {ssa: true},
		"profile":      {ssa: true, request: true},
		"decide":       {ssa: true, request: true, metadata: true},
	}
	for name, w := range want {
		got, ran := probes[name]
		got.order = 0
		if !ran || got != w {
			t.Errorf("%s saw %+v (ran %v), want %+v", name, got, ran, w)
		}
	}
	order := []string{"authenticate", "statement-1", "statement-2", "request", "profile", "decide"}
	for i := 1; i < len(order); i++ {
		if probes[order[i-1]].order >= probes[order[i]].order {
			t.Errorf("%s ran before %s", order[i], order[i-1])
		}
	}
}

// TestUnknownPhaseRefused: a protection that declares no known phase does not load.
func TestUnknownPhaseRefused(t *testing.T) {
	h := new(Handler)
	if err := json.Unmarshal([]byte(`{"default_policy": false, "protections": [`+strings.TrimSuffix(probe("odd", "after_everything"), ",")+`]}`), h); err != nil {
		t.Fatal(err)
	}
	h.store = &memStore{}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	err := h.Provision(ctx)
	if err == nil || !strings.Contains(err.Error(), `phase_probe declares phase "after_everything"`) {
		t.Fatalf("got %v, want the unknown phase refused", err)
	}
}

// memStore is a store that is never used: Provision fails before any call.
type memStore struct{ dcr.Store }

// Interface guards
var _ dcr.Protection = (*phaseProbe)(nil)

package caddymodule

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/plugins/policy"
)

// withDefaultPolicy adds the embedded default policy set to an in-process handler, as
// `policy` in the Caddyfile would (it declares the decide phase, after the OB profile rules). The registration limit is lifted so that b.N registrations of one software pass; the
// count still comes from the store on every request.
func withDefaultPolicy(b *testing.B, p *inProcess) {
	b.Helper()
	data := filepath.Join(b.TempDir(), "data.json")
	if err := os.WriteFile(data, []byte(`{"dcr":{"config":{"max_registrations_per_software":1000000000}}}`), 0o644); err != nil {
		b.Fatal(err)
	}
	pol := &policy.Policy{Data: []string{data}}
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	if err := pol.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pol.Cleanup() })
	pol.SetLogger(zap.NewNop())
	p.h.protections = append(p.h.protections, dcr.Step{Name: "policy", Protection: pol})
	if err := p.h.buildPipeline(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPipelineWithPolicy runs the whole POST pipeline without and with the default
// policy set in one run, so the policy's share is their difference:
//
//	go test -run '^$' -bench PipelineWithPolicy -benchtime 3s ./caddymodule
func BenchmarkPipelineWithPolicy(b *testing.B) {
	for _, withPolicy := range []bool{false, true} {
		name := "POST"
		if withPolicy {
			name = "POSTWithDefaultPolicy"
		}
		b.Run(name, func(b *testing.B) {
			p := newInProcess(b)
			if withPolicy {
				withDefaultPolicy(b, p)
			}
			if w := p.do(http.MethodPost, "/register", p.signedRequest(b, nil), ""); w.Code != http.StatusCreated {
				b.Fatalf("warm-up: %d %s", w.Code, w.Body)
			}
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = p.signedRequest(b, nil)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if w := p.do(http.MethodPost, "/register", bodies[i], ""); w.Code != http.StatusCreated {
					b.Fatalf("status %d %s", w.Code, w.Body)
				}
			}
		})
	}
}

package policy

import (
	"context"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
)

// BenchmarkDefaultPolicy measures the embedded default set deciding one registration: the
// input built from the exchange, the store count (a fake here), the evaluation and the
// decision log (to a discarding core). Eval alone is the prepared query only.
//
//	go test -run '^$' -bench DefaultPolicy -benchmem ./plugins/policy
func BenchmarkDefaultPolicy(b *testing.B) {
	p, _ := newPolicy(b, &Policy{})
	b.Run("Protect", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			x := exchange(nil)
			if _, err := p.Protect(context.Background(), x.Exchange, dcr.ReadOnly(x.Store)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Eval", func(b *testing.B) {
		input := Input(exchange(nil).Exchange, 0)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			d, err := p.engine.Decide(context.Background(), input)
			if err != nil || !d.Allow {
				b.Fatalf("%+v %v", d, err)
			}
		}
	})
}

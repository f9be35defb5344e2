package obprofile

import "testing"

// BenchmarkApply runs the OB rules on a complete tls_client_auth request with the default
// profile completed by SetDefaults, as the handler's profile step does on every registration.
//
//	go test -run '^$' -bench Apply -benchmem ./dcr/obprofile/
func BenchmarkApply(b *testing.B) {
	cert, ssa, claims := newCert(b), newSSA(), baseClaims()
	cfg := &Config{}
	cfg.SetDefaults()
	b.ReportAllocs()
	for range b.N {
		if _, err := Apply(cfg, Input{Claims: claims, SSA: ssa, ClientCert: cert}); err != nil {
			b.Fatal(err)
		}
	}
}

package caddymodule

import (
	"net/http"
	"os"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/dcrgate/dcrgate/internal/jwks"
)

// BenchmarkPipeline compares the whole POST pipeline (mTLS check, SSA verification, request
// verification with the TPP JWKS from the (cached) software_jwks_endpoint, every OB rule, the
// jti replay claim and the registration written to the embedded store on a temp dir) with the
// two bare PS256 verifications it cannot avoid. Run both in one go and compare:
//
//	go test -run '^$' -bench Pipeline -benchtime 3s ./caddymodule
func BenchmarkPipeline(b *testing.B) {
	benchmarkPipeline(b, newInProcess(b))
}

// BenchmarkPipelineTmpfs is the same pipeline with the store on a tmpfs (/dev/shm), which takes
// the disk's fsync out: what is left is the gateway's own work.
func BenchmarkPipelineTmpfs(b *testing.B) {
	shm, err := os.MkdirTemp("/dev/shm", "dcrgate-bench-")
	if err != nil {
		b.Fatalf("no tmpfs at /dev/shm: %v", err)
	}
	b.Cleanup(func() { _ = os.RemoveAll(shm) })
	benchmarkPipeline(b, newInProcessAt(b, shm))
}

func benchmarkPipeline(b *testing.B, p *inProcess) {
	// Warm the JWKS cache, as a running gateway would be.
	if w := p.do(http.MethodPost, "/register", p.signedRequest(b, nil), ""); w.Code != http.StatusCreated {
		b.Fatalf("warm-up: %d %s", w.Code, w.Body)
	}

	b.Run("POST", func(b *testing.B) {
		// Every request needs its own jti, so they are signed before the clock starts.
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

	b.Run("BarePS256x2", func(b *testing.B) {
		req := p.signedRequest(b, nil)
		ssa := []byte(p.tpp.SoftwareStatement)
		tppPub, err := p.tpp.SigningKey.PublicKey()
		if err != nil {
			b.Fatal(err)
		}
		dirSet, err := jwks.LoadFile(p.sb.Files.DirectoryJWKS)
		if err != nil {
			b.Fatal(err)
		}
		dirKey, _ := dirSet.Key(0)
		var dirPub jwk.Key = dirKey
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := jws.Verify(ssa, jws.WithKey(jwa.PS256, dirPub)); err != nil {
				b.Fatal(err)
			}
			if _, err := jws.Verify(req, jws.WithKey(jwa.PS256, tppPub)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

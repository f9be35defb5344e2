package policy

import (
	"context"

	"github.com/caddyserver/caddy/v2"
)

// engines holds one compiled engine per policy set content: a `caddy reload` with the same
// modules and data reuses the engine of the running config, and one with changed content
// compiles a new one while the old config keeps serving with its own until it is cleaned up.
var engines = caddy.NewUsagePool()

type pooledEngine struct{ *Engine }

// Destruct has nothing to release: an engine is plain memory.
func (pooledEngine) Destruct() error { return nil }

// acquireEngine returns the shared engine for b, compiling it if no config holds it yet, and
// whether it was compiled now. Release it with releaseEngine(b.Hash()).
func acquireEngine(ctx context.Context, b *Bundle) (*Engine, bool, error) {
	compiled := false
	v, _, err := engines.LoadOrNew(poolKey(b.Hash()), func() (caddy.Destructor, error) {
		e, err := Compile(ctx, b)
		if err != nil {
			return nil, err
		}
		compiled = true
		return pooledEngine{e}, nil
	})
	if err != nil {
		return nil, false, err
	}
	return v.(pooledEngine).Engine, compiled, nil
}

func releaseEngine(hash string) {
	_, _ = engines.Delete(poolKey(hash))
}

func poolKey(hash string) string { return "dcr-policy:" + hash }

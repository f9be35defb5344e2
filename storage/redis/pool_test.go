package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/dcrgate/dcrgate/dcr/storetest"
)

// Stores with one connection config share one client across configs (what a reload does),
// which is closed only when the last of them is cleaned up; another config gets its own.
func TestClientsAreSharedAndClosedWithTheLastUser(t *testing.T) {
	addr := startRedisForUnitTest(t)
	load := func(config string) *Store {
		t.Helper()
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		t.Cleanup(cancel)
		mod, err := ctx.LoadModuleByID("dcr.storage.redis", json.RawMessage(config))
		if err != nil {
			t.Fatal(err)
		}
		return mod.(*Store)
	}
	oldConfig := load(fmt.Sprintf(`{"address":%q,"prefix":"a"}`, addr))
	newConfig := load(fmt.Sprintf(`{"address":%q,"prefix":"b","min_replicas_ack":0}`, addr))
	other := load(fmt.Sprintf(`{"address":%q,"db":1}`, addr))
	if oldConfig.client != newConfig.client {
		t.Error("two stores on one connection config have separate clients")
	}
	if other.client == newConfig.client {
		t.Error("stores on different databases share a client")
	}
	ctx := t.Context()
	if err := oldConfig.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := newConfig.Create(ctx, storetest.NewRegistration(1)); err != nil {
		t.Fatalf("the new config's store after the old one's cleanup: %v", err)
	}
	if err := newConfig.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if _, err := newConfig.Get(ctx, "client-1"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Get after the last user's cleanup = %v, want a closed client", err)
	}
	if _, err := other.Claim(ctx, "k", time.Minute); err != nil {
		t.Errorf("a store of another config was affected: %v", err)
	}
}

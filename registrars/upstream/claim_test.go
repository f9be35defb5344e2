package upstream

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
)

// downOnce is a store whose one-time keys fail (the rest works).
type downOnce struct{ dcr.Store }

func (downOnce) Claim(context.Context, string, time.Duration) (bool, error) {
	return false, errStoreDown
}

func TestClaimFirst(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	if ok, err := s.Claim(ctx, "used", time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	used := dcr.OnceClaim{Key: "used", TTL: time.Hour, Reject: dcr.BadMetadata("jti used")}
	release, err := claimFirst(ctx, s, []dcr.OnceClaim{{Key: "a", TTL: time.Hour}, used, {Key: "b", TTL: time.Hour}})
	var ou *dcr.OnceUsedError
	if !errors.As(err, &ou) || ou.Rejection() != used.Reject || release != nil {
		t.Fatalf("got %v, want the used key's rejection", err)
	}
	for _, k := range []string{"a", "b"} {
		if seen, _ := s.Seen(ctx, k); seen {
			t.Fatalf("%s kept: a refused claim keeps none of its keys", k)
		}
	}
	release, err = claimFirst(ctx, s, []dcr.OnceClaim{{Key: "a", TTL: time.Hour}, {Key: "b", TTL: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	if seen, _ := s.Seen(ctx, "b"); !seen {
		t.Fatal("b not claimed")
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if seen, _ := s.Seen(ctx, "a"); seen {
		t.Fatal("a kept after release")
	}
	if _, err := claimFirst(ctx, downOnce{s}, []dcr.OnceClaim{{Key: "c", TTL: time.Hour}}); !errors.Is(err, errStoreDown) {
		t.Fatalf("a store that is down: %v", err)
	}
}

// A replayed request (its jti used) never reaches the backend; a registration whose record
// cannot be stored gives its jti back, so the client may retry the same request.
func TestRegisterClaimsBeforeTheBackend(t *testing.T) {
	b := newFakeBackend()
	u, store := newRegistrar(t), newStore(t)
	jti := dcr.OnceClaim{Key: "jti-1", TTL: time.Hour, Reject: dcr.BadMetadata("jti used")}

	down := exchange(t, &failingStore{Store: store, create: true}, b)
	down.Commit = dcr.Commit{Once: []dcr.OnceClaim{jti}}
	if _, _, err := down.register(context.Background(), u); dcr.AsError(err).Status != http.StatusServiceUnavailable {
		t.Fatalf("store down: %v, want 503", err)
	}
	if seen, _ := store.Seen(context.Background(), jti.Key); seen {
		t.Fatal("the jti of a registration that was not stored is still used")
	}

	x := exchange(t, store, b)
	x.Commit = dcr.Commit{Once: []dcr.OnceClaim{jti}, Event: &dcr.HistoryEvent{Time: time.Now().UTC(), Event: dcr.EventRegistered}}
	rec, _, err := x.register(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	events, err := store.History(context.Background(), dcr.HistoryOfClient, rec.ClientID, time.Time{})
	if err != nil || len(events) != 1 || events[0].ClientID != rec.ClientID {
		t.Fatalf("history %+v %v, want the registered event", events, err)
	}
	calls := len(b.calls)
	var ou *dcr.OnceUsedError
	if _, _, err := x.register(context.Background(), u); !errors.As(err, &ou) || ou.Rejection() != jti.Reject {
		t.Fatalf("replay: %v, want the jti's rejection", err)
	}
	if len(b.calls) != calls || b.count() != 1 {
		t.Fatalf("the replay reached the backend: calls %v", b.calls[calls:])
	}
}

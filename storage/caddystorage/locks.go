package caddystorage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/certmagic"
)

// lockTimeout bounds how long an operation waits for a key. It is above twice certmagic's
// FileStorage lock freshness interval (5s), so a lock file left by a crashed process is
// declared stale and taken over before a waiter gives up.
const lockTimeout = 15 * time.Second

// stripes is the number of in-process lock stripes. Keys are SHA-256 hashes, so their first
// byte spreads them evenly; unrelated keys sharing a stripe only wait for each other briefly.
const stripes = 256

// keyLocks serialises writers of one key: first among the goroutines of this process, on a
// stripe, then across processes with the storage lock. The in-process stage matters for
// speed, not correctness: certmagic's FileStorage polls a contended lock once per second, so
// without it two requests of one process racing on a key would wait a second.
type keyLocks struct {
	storage certmagic.Storage
	stripes *stripeSet
}

// stripeSet holds one-slot semaphores rather than sync.Mutexes so that waiting for a stripe
// honours the caller's context.
type stripeSet [stripes]chan struct{}

func newStripeSet() *stripeSet {
	var set stripeSet
	for i := range set {
		set[i] = make(chan struct{}, 1)
	}
	return &set
}

// processStripes is shared by every Store of the process, whatever its storage: during a
// config reload the old and the new Store overlap, and several handlers may each have a
// store on the same storage; sharing keeps them from meeting on the storage lock's 1s poll.
// Stores on different storages only ever wait for each other a moment, on a shared stripe.
var processStripes = newStripeSet()

func newKeyLocks(storage certmagic.Storage) *keyLocks {
	return &keyLocks{storage: storage, stripes: processStripes}
}

// lock takes the lock of the storage key name, whose variable part is the hex hash h (which
// picks the stripe). The returned unlock must be called exactly once.
func (l *keyLocks) lock(ctx context.Context, name, h string) (unlock func() error, err error) {
	return l.lockAll(ctx, []lockTarget{{name, h}})
}

// lockTarget is a storage key to lock and the hex hash that picks its stripe.
type lockTarget struct{ name, hash string }

// lockAll takes the locks of every target for one operation (a registration and its
// one-time keys): the distinct stripes in ascending order, then the storage locks in name
// order, so that operations sharing keys (or stripes) never wait for each other in a circle,
// and two targets on one stripe do not wait for themselves. The returned unlock must be
// called exactly once.
func (l *keyLocks) lockAll(ctx context.Context, targets []lockTarget) (unlock func() error, err error) {
	waitCtx, cancel := context.WithTimeout(ctx, lockTimeout)
	defer cancel()

	var held []byte
	names := make([]string, 0, len(targets))
	for _, t := range targets {
		if st := stripeOf(t.hash); !slices.Contains(held, st) {
			held = append(held, st)
		}
		if !slices.Contains(names, t.name) {
			names = append(names, t.name)
		}
	}
	slices.Sort(held)
	slices.Sort(names)
	var locked []string
	release := func() error {
		defer func() {
			for _, st := range held {
				<-l.stripes[st]
			}
		}()
		// Unlock even when the request was cancelled meanwhile: the critical section ran, and
		// a lock left behind would block the key until it goes stale.
		var errs []error
		for _, name := range locked {
			errs = append(errs, l.storage.Unlock(context.WithoutCancel(ctx), name))
		}
		return errors.Join(errs...)
	}
	for i, st := range held {
		select {
		case l.stripes[st] <- struct{}{}:
		case <-waitCtx.Done():
			held = held[:i]
			_ = release()
			return nil, fmt.Errorf("caddystorage: waiting for the lock of %s: %w", names[0], waitCtx.Err())
		}
	}
	for _, name := range names {
		if err := l.storage.Lock(waitCtx, name); err != nil {
			_ = release()
			return nil, fmt.Errorf("caddystorage: taking the storage lock of %s: %w", name, err)
		}
		locked = append(locked, name)
	}
	return release, nil
}

// stripeOf reads the first byte of a hex hash.
func stripeOf(h string) byte {
	var b byte
	for i := 0; i < 2 && i < len(h); i++ {
		c := h[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c = 0
		}
		b = b<<4 | c
	}
	return b
}

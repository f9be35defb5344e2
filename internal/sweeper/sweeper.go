// Package sweeper runs a store's sweep of expired one-time keys (replay caches, consumed
// tokens) in the background, for the stores that do not expire keys themselves (bolt,
// caddystorage; Redis has TTLs).
package sweeper

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Sweeper is a running background sweep.
type Sweeper struct {
	stop context.CancelFunc
	done chan struct{}
}

// Start runs sweep every interval until ctx is done or Stop is called. sweep returns how many
// keys it removed; a failure is logged as a warning (the next sweep tries again), a sweep
// that removed keys at debug level.
func Start(ctx context.Context, interval time.Duration, logger *zap.Logger, sweep func(context.Context) (int, error)) *Sweeper {
	ctx, cancel := context.WithCancel(ctx)
	s := &Sweeper{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				removed, err := sweep(ctx)
				if err != nil && ctx.Err() == nil {
					logger.Warn("sweeping expired one-time keys", zap.Int("removed", removed), zap.Error(err))
				} else if removed > 0 {
					logger.Debug("swept expired one-time keys", zap.Int("removed", removed))
				}
			}
		}
	}()
	return s
}

// Done is closed once the sweep has ended (its context done, or Stop).
func (s *Sweeper) Done() <-chan struct{} { return s.done }

// Stop ends the sweep and waits for a sweep in progress, so that none outlives its store. A
// nil Sweeper (never started) and a second Stop do nothing.
func (s *Sweeper) Stop() {
	if s == nil {
		return
	}
	s.stop()
	<-s.done
}

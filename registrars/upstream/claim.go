package upstream

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
)

// The order of an upstream call's writes. The backend call cannot be inside the store's
// transaction, so the call's one-time keys (request jti, single-use token) are claimed
// first, in their own store calls (claimFirst); then the backend is called; then the record
// is stored with the lifecycle event (one store write); if the backend or the store fails,
// the keys are given back, so the client may retry the same request.
//
// Why first: of concurrent copies of one request, only the one that claimed the keys ever
// reaches the backend, so a replay never creates a client there that would then have to be
// deleted again (a compensation that can itself fail and leave an orphan in the
// authorization server). The price is a crash between the claim and the record: the keys
// stay used by a call that was never answered, and the client must sign a new request. That
// fails closed: no answered registration ever loses its jti, and no replay gets through. A
// reservation (claim, then confirm with the record) would only move the same window.

// claimFirst claims every key, in order, or none: it returns the *dcr.OnceUsedError of the
// first key already used (those claimed before it are given back), or a release func that
// gives every key back if the call then fails. Of concurrent calls that share keys, exactly
// one wins.
func claimFirst(ctx context.Context, s dcr.OnceStore, keys []dcr.OnceClaim) (release func() error, err error) {
	var done []string
	release = func() error {
		ctx := context.WithoutCancel(ctx)
		var errs []error
		for _, k := range done {
			errs = append(errs, s.Release(ctx, k))
		}
		return errors.Join(errs...)
	}
	for _, c := range keys {
		ok, err := s.Claim(ctx, c.Key, c.TTL)
		if err != nil {
			return nil, errors.Join(err, release())
		}
		if !ok {
			if rerr := release(); rerr != nil {
				return nil, rerr
			}
			return nil, &dcr.OnceUsedError{Claim: c}
		}
		done = append(done, c.Key)
	}
	return release, nil
}

// giveBack releases the keys of a call that failed; a failure is logged (the call's own
// error is the answer).
func (u *Upstream) giveBack(release func() error) {
	if err := release(); err != nil {
		u.logger.Warn("releasing a one-time key failed", zap.Error(err))
	}
}

// withoutKeys is c less its keys, which claimFirst already claimed.
func withoutKeys(c dcr.Commit) dcr.Commit {
	c.Once = nil
	return c
}

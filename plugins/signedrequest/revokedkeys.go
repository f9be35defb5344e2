package signedrequest

import (
	"context"
	"fmt"
	"sync"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/revokedkeys"
	"github.com/dcrgate/dcrgate/internal/jwks"
)

// RevokedKeys configures the look-up of the request-signing key in the revoked key sets its
// software statement names (software_jwks_revoked_endpoint, org_jwks_revoked_endpoint). The
// sets are fetched by the module's fetcher, under its fetch limits and cache, and only from
// URLs the directory's jwks_hosts allow (dcr/ssa checks them). The rule is dcr/revokedkeys'.
type RevokedKeys struct {
	// FailMode is what a revoked set that cannot be fetched (no set cached) means: hard
	// (default) refuses the call with 503 and Retry-After; soft accepts it and logs a warning
	// naming the URL (the policy input says the source was unavailable).
	FailMode string `json:"fail_mode,omitempty"`
}

// coreConfig is the rule's configuration.
func (r RevokedKeys) coreConfig() revokedkeys.Config {
	return revokedkeys.Config{FailMode: r.FailMode}
}

// signingKey names the key that verified the request: its kid and RFC 7638 thumbprint.
func signingKey(key jwk.Key, kid string) (dcr.RegisteredKey, error) {
	tp, err := jwks.Thumbprint(key)
	if err != nil {
		return dcr.RegisteredKey{}, err
	}
	return dcr.RegisteredKey{KeyID: kid, Thumbprint: tp}, nil
}

// checkRevoked fetches the revoked sets and applies the rule to key. A soft failure is
// logged here, once per call, with the URLs that could not be fetched.
func (s *SignedRequest) checkRevoked(ctx context.Context, key dcr.RegisteredKey, sets []dcr.RevokedKeySet) revokedkeys.Outcome {
	// The sets are fetched side by side: a call waits for the slower one, not for both.
	fetched := make([]revokedkeys.Set, len(sets))
	var wg sync.WaitGroup
	for i, set := range sets {
		fetched[i].RevokedKeySet = set
		wg.Go(func() { fetched[i].Listed, fetched[i].Err = s.fetcher.RevokedSet(ctx, set.URL) })
	}
	wg.Wait()
	out := revokedkeys.Check(s.revoked, key, fetched)
	if !out.Revoked() && len(out.Failed) > 0 && out.Facts.FailMode == revokedkeys.FailSoft {
		for _, f := range out.Failed {
			s.logger.Warn("revoked key set cannot be fetched; accepting the signing key under fail_mode soft",
				zap.String("url", f.URL), zap.String("claim", f.Claim), zap.String("kid", key.KeyID), zap.Error(f.Err))
		}
	}
	return out
}

// registeringKeyStep is signed_request's companion in the authenticate phase: on a read,
// update or delete it looks the key the client registered (or last updated) with up in the
// revoked key sets stored with the registration, and refuses the call when one lists it.
type registeringKeyStep struct{ s *SignedRequest }

// Phase is authenticate: a management call is decided there.
func (registeringKeyStep) Phase() dcr.Phase { return dcr.PhaseAuthenticate }

// Protect votes: a refusal (audit reason "revoked: ...") when the registering key is revoked,
// nothing otherwise; an error (503) when a set cannot be fetched under hard fail. A
// registration stored without its signing key (made before keys were recorded) has nothing
// to look up.
func (st registeringKeyStep) Protect(ctx context.Context, x *dcr.Exchange, _ dcr.Registry) (dcr.Result, error) {
	if x.Operation == dcr.OpRegister || x.Existing == nil || x.Existing.SigningKey == nil || len(x.Existing.SigningKey.RevokedKeySets) == 0 {
		return dcr.Result{}, nil
	}
	key := *x.Existing.SigningKey
	vote, err := st.s.checkRevoked(ctx, key, key.RevokedKeySets).ManagementVote(key)
	if err != nil {
		return dcr.Result{}, err
	}
	return dcr.Result{Vote: vote}, nil
}

// CompanionSteps is the management re-check of the registering key (see registeringKeyStep).
func (s *SignedRequest) CompanionSteps() []dcr.Step {
	return []dcr.Step{{Name: "revoked_keys", Protection: registeringKeyStep{s: s}}}
}

// validate checks the revoked_keys block.
func (r RevokedKeys) validate() error {
	cfg := r.coreConfig()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("revoked_keys: %w", err)
	}
	return nil
}

var (
	_ dcr.Companions = (*SignedRequest)(nil)
	_ dcr.Protection = registeringKeyStep{}
)

// Package revokedkeys is the revoked-key rule of OB DCR: a request-signing key listed, by kid
// or by RFC 7638 thumbprint, in a revoked key set its software statement names
// (software_jwks_revoked_endpoint, org_jwks_revoked_endpoint) may not register, update, read
// or delete a client. It knows nothing of Caddy or of fetching: the caller
// (plugins/signedrequest) fetches the sets through internal/jwks and hands them to Check.
//
// The directory's own SSA-signing keys are trusted configuration and never looked up here;
// transport certificates are checked at the TLS handshake (tlsrevocation).
package revokedkeys

import (
	"errors"
	"fmt"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jwks"
)

// Fail modes: what a revoked set that cannot be fetched means.
const (
	// FailHard refuses the call with a 503 (Retry-After): the key cannot be checked. The
	// default.
	FailHard = "hard"
	// FailSoft accepts the call as if the set listed nothing, and says so (a warning, and
	// the policy input's revocation.signing_key.unavailable).
	FailSoft = "soft"
)

// ReasonRevoked starts the audit reason of a management call refused for a revoked key.
const ReasonRevoked = "revoked"

// Config is the deployment's choice of fail mode. The zero Config is the default (hard).
type Config struct {
	FailMode string
}

// SetDefaults fills an empty FailMode with FailHard.
func (c *Config) SetDefaults() {
	if c.FailMode == "" {
		c.FailMode = FailHard
	}
}

// Validate refuses an unknown fail mode.
func (c *Config) Validate() error {
	switch c.FailMode {
	case "", FailHard, FailSoft:
		return nil
	}
	return fmt.Errorf("fail_mode %q: want %s or %s", c.FailMode, FailHard, FailSoft)
}

// Set is one revoked key set as fetched: its source and the keys it lists, or the error that
// kept it from being fetched.
type Set struct {
	dcr.RevokedKeySet
	Listed []jwks.Listed
	Err    error
}

// Outcome is what Check found.
type Outcome struct {
	// Facts are what the policy input and the stored registration see.
	Facts dcr.KeyRevocation
	// RevokedBy is the set that lists the key, nil when none does; MatchedBy says how it
	// names it ("kid" or "thumbprint").
	RevokedBy *dcr.RevokedKeySet
	MatchedBy string
	// Failed are the sets that could not be fetched.
	Failed []Set
}

// Check looks key up in sets, in order. A set that lists it revokes it, whatever the other
// sets say or whether they could be fetched; sets that could not be fetched are Failed and
// the fail mode decides (see Outcome.RequestError and Outcome.ManagementVote).
func Check(cfg Config, key dcr.RegisteredKey, sets []Set) Outcome {
	cfg.SetDefaults()
	out := Outcome{Facts: dcr.KeyRevocation{FailMode: cfg.FailMode}}
	for i := range sets {
		s := &sets[i]
		out.Facts.Sources = append(out.Facts.Sources, s.URL)
		if s.Err != nil {
			out.Failed = append(out.Failed, *s)
			out.Facts.Unavailable = append(out.Facts.Unavailable, s.URL)
			continue
		}
		out.Facts.Checked = true
		if how, listed := Lists(*s, key); listed && out.RevokedBy == nil {
			out.RevokedBy, out.MatchedBy = &s.RevokedKeySet, how
		}
	}
	return out
}

// Lists reports whether set names key: by kid (non-empty, equal) or by thumbprint (non-empty,
// equal); how is "kid" or "thumbprint". Both are public values: a plain comparison suffices.
func Lists(set Set, key dcr.RegisteredKey) (how string, listed bool) {
	for _, l := range set.Listed {
		if key.KeyID != "" && l.KeyID == key.KeyID {
			return "kid", true
		}
		if key.Thumbprint != "" && l.Thumbprint == key.Thumbprint {
			return "thumbprint", true
		}
	}
	return "", false
}

// Revoked reports whether the key is listed.
func (o Outcome) Revoked() bool { return o.RevokedBy != nil }

// RequestError is the answer to a register or update signed with the key: 400
// invalid_client_metadata naming the key and the list when it is revoked; 503 when a set
// could not be fetched under hard fail; nil otherwise.
func (o Outcome) RequestError(key dcr.RegisteredKey) *dcr.Error {
	if o.RevokedBy != nil {
		return dcr.BadMetadata("the request signing key %q is revoked: it is listed (by %s) in the revoked key set at %s (%s)",
			clip(key.KeyID), o.MatchedBy, clip(o.RevokedBy.URL), o.RevokedBy.Claim)
	}
	if len(o.Failed) > 0 && o.Facts.FailMode == FailHard {
		return dcr.Unavailable(o.failures(), "the revoked key set at %s cannot be fetched, so the request signing key cannot be checked", clip(o.Failed[0].URL))
	}
	return nil
}

// ManagementVote is the vote on a read, update or delete of a client registered with the key:
// a refusal with an audit reason that starts with ReasonRevoked when it is revoked (the
// caller gets the one 401 of every refusal); an error (503) when a set could not be fetched
// under hard fail; no vote otherwise.
func (o Outcome) ManagementVote(key dcr.RegisteredKey) (dcr.Vote, error) {
	if o.RevokedBy != nil {
		return dcr.Refuse(fmt.Sprintf("%s: the registering key %q is listed (by %s) in the revoked key set at %s (%s)",
			ReasonRevoked, clip(key.KeyID), o.MatchedBy, clip(o.RevokedBy.URL), o.RevokedBy.Claim)), nil
	}
	if len(o.Failed) > 0 && o.Facts.FailMode == FailHard {
		return dcr.Vote{}, dcr.Unavailable(o.failures(), "the revoked key set at %s cannot be fetched, so the registering key cannot be checked", clip(o.Failed[0].URL))
	}
	return dcr.Vote{}, nil
}

func (o Outcome) failures() error {
	errs := make([]error, len(o.Failed))
	for i, f := range o.Failed {
		errs[i] = f.Err
	}
	return errors.Join(errs...)
}

// clip shortens a client-supplied value for an error description.
func clip(s string) string {
	const limit = 128
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

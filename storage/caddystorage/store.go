// Package caddystorage is dcr.storage.caddy, the default registration store: it keeps
// registrations and one-time keys in Caddy's configured storage (the file system in Caddy's
// data directory unless the config says otherwise), so a single gateway needs no database and
// gateways that share a storage backend share their registrations.
//
// Layout under Prefix (default "dcr"), every variable part a SHA-256 in hex so that ids from
// SSAs can neither escape their directory nor collide on case-insensitive file systems:
//
//	<prefix>/registrations/<sha256(client_id)>.json          the record (source of truth)
//	<prefix>/index/software/<sha256(software_id)>/<sha256(client_id)>
//	<prefix>/index/org/<sha256(org_id)>/<sha256(client_id)>
//	<prefix>/once/<sha256(key)>                              {"expires": ...}
package caddystorage

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/sweeper"

	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
)

func init() {
	caddy.RegisterModule(Store{})
}

const (
	defaultPrefix        = "dcr"
	defaultSweepInterval = 10 * time.Minute
)

// Store is a dcr.Store on a certmagic.Storage. Every write of a key runs under an in-process
// lock (so goroutines of one process never wait on the storage lock's polling) and then the
// storage's own lock (so several Caddy processes on one storage stay correct).
type Store struct {
	// Prefix is the storage key prefix everything is kept under. Default "dcr".
	Prefix string `json:"prefix,omitempty"`
	// SweepInterval is how often expired one-time keys are removed. Default 10m. Expired keys
	// are already treated as absent; sweeping only reclaims their space.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`

	storage certmagic.Storage
	logger  *zap.Logger
	locks   *keyLocks
	now     func() time.Time

	sweeper *sweeper.Sweeper
}

// CaddyModule returns the Caddy module information.
func (Store) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.storage.caddy",
		New: func() caddy.Module { return new(Store) },
	}
}

// New returns a Store on storage, for tests and for embedding without a Caddy config. An empty
// prefix means "dcr". It panics on an invalid prefix, like regexp.MustCompile, since a prefix
// here is a constant of the caller. No sweeper runs: call Sweep if expired keys should be
// removed (they are treated as absent either way).
func New(storage certmagic.Storage, prefix string) *Store {
	s := &Store{Prefix: prefix}
	if err := s.init(storage, zap.NewNop()); err != nil {
		panic(err)
	}
	return s
}

// Provision uses the storage of the Caddy config and starts the sweeper, which stops when the
// config is unloaded (ctx is done) or at Cleanup.
func (s *Store) Provision(ctx caddy.Context) error {
	storage := ctx.Storage()
	if storage == nil {
		return errors.New("caddystorage: Caddy has no storage configured")
	}
	if err := s.init(storage, ctx.Logger()); err != nil {
		return err
	}
	s.sweeper = sweeper.Start(ctx, time.Duration(s.SweepInterval), s.logger, s.Sweep)
	s.logger.Debug("registration store provisioned",
		zap.String("prefix", s.Prefix),
		zap.Duration("sweep_interval", time.Duration(s.SweepInterval)),
		zap.String("storage", fmt.Sprint(storage)))
	return nil
}

func (s *Store) init(storage certmagic.Storage, logger *zap.Logger) error {
	if s.Prefix == "" {
		s.Prefix = defaultPrefix
	}
	if err := validatePrefix(s.Prefix); err != nil {
		return err
	}
	switch {
	case s.SweepInterval < 0:
		return fmt.Errorf("caddystorage: sweep_interval %v is negative", time.Duration(s.SweepInterval))
	case s.SweepInterval == 0:
		s.SweepInterval = caddy.Duration(defaultSweepInterval)
	}
	s.storage = storage
	s.logger = logger
	s.locks = newKeyLocks(storage)
	s.now = time.Now
	return nil
}

// Cleanup stops the sweeper and waits for it, so that no sweep of an unloaded config
// outlives it.
func (s *Store) Cleanup() error {
	s.sweeper.Stop()
	return nil
}

// UnmarshalCaddyfile sets up the store from Caddyfile tokens. The dispenser is positioned at
// the module name, as for other guest modules (the enclosing directive, e.g. `storage`, has
// been consumed by the caller, which loads the module with caddyfile.UnmarshalModule):
//
//	caddy [{
//	    prefix         <prefix>
//	    sweep_interval <duration>
//	}]
//
// so that a handler's `storage caddy { prefix dcr-prod }` selects this module.
func (s *Store) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "prefix":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if err := validatePrefix(d.Val()); err != nil {
				return d.WrapErr(err)
			}
			s.Prefix = d.Val()
		case "sweep_interval":
			interval, err := caddyfileargs.Duration(d, false)
			if err != nil {
				return err
			}
			s.SweepInterval = interval
		default:
			return d.Errf("unrecognized subdirective %q", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}

// validatePrefix accepts relative, clean, slash-separated key prefixes: the prefix becomes a
// path under Caddy's storage root and must not climb out of it.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return errors.New("caddystorage: prefix is empty")
	}
	if strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/") || strings.Contains(prefix, `\`) {
		return fmt.Errorf("caddystorage: prefix %q must be relative, without a trailing slash or backslashes", prefix)
	}
	for seg := range strings.SplitSeq(prefix, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("caddystorage: prefix %q has an empty, '.' or '..' segment", prefix)
		}
	}
	return nil
}

// Interface guards
var (
	_ dcr.Store             = (*Store)(nil)
	_ caddy.Module          = (*Store)(nil)
	_ caddy.Provisioner     = (*Store)(nil)
	_ caddy.CleanerUpper    = (*Store)(nil)
	_ caddyfile.Unmarshaler = (*Store)(nil)
)

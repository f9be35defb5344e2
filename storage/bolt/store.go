// Package bolt is dcr.storage.bolt, the embedded default registration store: one bbolt file
// (go.etcd.io/bbolt, a single-file B+tree with ACID transactions) in Caddy's data directory,
// so a single gateway needs no database and every registration is written in one transaction.
//
// Layout, one bucket per concern (every write of a registration touches the record and its
// index entries in the same transaction, so no crash leaves one without the other):
//
//	registrations  client_id                               -> 0x00 || seq (a reference to records)
//	records        seq (uint64 big-endian, appended)       -> the record (JSON, source of truth)
//	software       sha256(software_id) || issued || client_id -> ""
//	org            sha256(org_id) || issued || client_id      -> ""
//	once           sha256(key)                             -> expiry (uint64 big-endian Unix ns)
//	once_expiry    expiry || sha256(key)                   -> ""  (TTL order, for the sweeper)
//	meta           "schema", "migrated_from_caddy"         -> bookkeeping
//	client_history seq of the record || time || n          -> a client's history event (JSON), bounded
//	history        sha256(kind, id) || time || n           -> other history events (JSON), bounded
//	denylist       kind || NUL || id                       -> a deny list entry (JSON), bounded
//
// The layout is chosen for what a group commit writes: bbolt rewrites every page it dirties,
// and random keys (the UUID client_ids, hashes) put each entry on a page of its own. So the
// records, 3 KB each, are appended together (recordRefTag), a client's history follows its
// record's sequence number (historyPlace), and the index entries of one id are in issue
// order (indexKey; issued is client_id_issued_at in Unix ns). This is schema 2; a file of
// schema 1 (records in registrations, index keys without the time) is migrated at open
// (migrateIndexes); its records and client histories are read where they are until next
// written.
//
// One-time keys are stored hashed: they can be consumed bearer tokens, which must not sit in
// the file in the clear. The hash is the one storage/caddystorage names its keys by, so a
// migration carries keys over without knowing them.
//
// Writers are group-committed (see committer): concurrent writes share one transaction and
// one fsync. The open *bbolt.DB is shared by every Store on the same file in the process
// (a caddy.UsagePool keyed by the file's absolute path), so a config reload reuses it; the
// file lock keeps a second process out.
package bolt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/sweeper"
)

func init() {
	caddy.RegisterModule(Store{})
}

const (
	defaultSweepInterval = 10 * time.Minute
	// defaultLockTimeout bounds the wait for the file lock at start: long enough for a
	// process that is exiting to let go, short enough that a second Caddy on the same file
	// fails at once instead of hanging.
	defaultLockTimeout = 2 * time.Second
)

// DefaultPath is where the store keeps its file unless configured otherwise:
// <Caddy's data directory>/dcr/registry.db.
func DefaultPath() string {
	return filepath.Join(caddy.AppDataDir(), "dcr", "registry.db")
}

// Store is a dcr.Store in one bbolt file.
type Store struct {
	// Path is the database file. Default: DefaultPath(), i.e. dcr/registry.db in Caddy's data
	// directory. Its directory is created if missing.
	Path string `json:"path,omitempty"`
	// SweepInterval is how often expired one-time keys are removed. Default 10m. Expired keys
	// already read as absent; sweeping only reclaims their space, and it reads only the
	// expired ones (the TTL-ordered bucket), never the whole set.
	SweepInterval caddy.Duration `json:"sweep_interval,omitempty"`
	// CheckCaddyStorage is set by the dcr handler when no storage is configured, i.e. when
	// this store is the implicit default: Provision then refuses to start while Caddy's
	// storage holds a registry of the caddy store (keys under "dcr/") that was not migrated
	// into this file, so an upgrade never silently abandons existing registrations.
	CheckCaddyStorage bool `json:"check_caddy_storage,omitempty"`

	db       *pooledDB
	released bool
	logger   *zap.Logger
	now      func() time.Time

	sweeper *sweeper.Sweeper
}

// CaddyModule returns the Caddy module information.
func (Store) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.storage.bolt",
		New: func() caddy.Module { return new(Store) },
	}
}

// Open opens (or creates) the store file at path outside a Caddy config: for the migration
// command and tests. An empty path means DefaultPath(). No sweeper runs. Close it when done.
func Open(path string, logger *zap.Logger) (*Store, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	s := &Store{Path: path}
	if err := s.open(logger); err != nil {
		return nil, err
	}
	return s, nil
}

// Provision opens the file (or takes the already open one from the pool) and starts the
// sweeper, which stops when the config is unloaded or at Cleanup.
func (s *Store) Provision(ctx caddy.Context) error {
	logger := ctx.Logger()
	if s.SweepInterval < 0 {
		return fmt.Errorf("bolt: sweep_interval %v is negative", time.Duration(s.SweepInterval))
	}
	if s.SweepInterval == 0 {
		s.SweepInterval = caddy.Duration(defaultSweepInterval)
	}
	if err := s.resolvePath(); err != nil {
		return err
	}
	if s.CheckCaddyStorage {
		if err := s.checkCaddyStorage(ctx, logger); err != nil {
			return err
		}
	} else if err := s.open(logger); err != nil {
		return err
	}
	s.sweeper = sweeper.Start(ctx, time.Duration(s.SweepInterval), logger, s.Sweep)
	logger.Info("registration store provisioned",
		zap.String("path", s.Path),
		zap.Duration("sweep_interval", time.Duration(s.SweepInterval)),
		zap.Bool("default", s.CheckCaddyStorage))
	return nil
}

// resolvePath makes Path absolute, the pool's key: two spellings of one file share one DB.
func (s *Store) resolvePath() error {
	if s.Path == "" {
		s.Path = DefaultPath()
	}
	abs, err := filepath.Abs(s.Path)
	if err != nil {
		return fmt.Errorf("bolt: resolving path %q: %w", s.Path, err)
	}
	s.Path = abs
	return nil
}

func (s *Store) open(logger *zap.Logger) error {
	if err := s.resolvePath(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
		return fmt.Errorf("bolt: creating the directory of %s: %w", s.Path, err)
	}
	db, err := acquireDB(s.Path, defaultLockTimeout)
	if err != nil {
		return err
	}
	s.db = db
	s.logger = logger
	s.now = time.Now
	return nil
}

// Cleanup stops the sweeper and gives the file back to the pool, which closes it when the
// last Store on it is cleaned up (after a reload, the new config's Store holds it).
func (s *Store) Cleanup() error {
	s.sweeper.Stop()
	if s.db == nil || s.released {
		return nil
	}
	// s.db stays set: a request still in flight gets errClosed from the committer once the
	// file is closed, rather than a nil pointer.
	s.released = true
	_, err := dbs.Delete(s.Path)
	return err
}

// Close is Cleanup, for stores made with Open.
func (s *Store) Close() error { return s.Cleanup() }

// errClosed is what a Store answers after Cleanup: the handler maps it to 503.
var errClosed = errors.New("bolt: the store is closed")

// Interface guards
var (
	_ caddy.Provisioner  = (*Store)(nil)
	_ caddy.CleanerUpper = (*Store)(nil)
	_ dcr.Store          = (*Store)(nil)
)

package bolt

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// dbs holds one open database per file (absolute path) for the whole process: bbolt locks
// its file, so a second Open of the same file in this process would wait for the first to
// close, and a config reload provisions the new Store before it cleans up the old one.
var dbs = caddy.NewUsagePool()

// Bucket names.
var (
	bucketRegistrations = []byte("registrations")
	bucketRecords       = []byte("records")
	bucketSoftware      = []byte("software")
	bucketOrg           = []byte("org")
	bucketOnce          = []byte("once")
	bucketOnceExpiry    = []byte("once_expiry")
	bucketMeta          = []byte("meta")
	bucketHistory       = []byte("history")
	bucketClientHistory = []byte("client_history")
	bucketDenyList      = []byte("denylist")

	allBuckets = [][]byte{bucketRegistrations, bucketRecords, bucketSoftware, bucketOrg, bucketOnce, bucketOnceExpiry, bucketMeta, bucketHistory, bucketClientHistory, bucketDenyList}
)

var (
	metaSchema       = []byte("schema")
	metaMigratedFrom = []byte("migrated_from_caddy")
	// currentSchema is the layout this version writes. Schema 1 kept the records in the
	// registrations bucket and keyed the index entries by client_id alone; a file of schema 1
	// is migrated at open (its index entries rebuilt; its records are read where they are,
	// see recordRefTag).
	currentSchema = []byte("2")
	schema1       = []byte("1")

	errUnknownSchema  = errors.New("bolt: the file was written by another version of the store")
	errAnotherProcess = errors.New("bolt: the file is locked by another process")
	errNotADatabase   = errors.New("bolt: the file is not a registry database")
)

// migrateIndexes rebuilds the software and org index buckets from the records (the source of
// truth) in the key layout of this version, in the transaction that marks the file
// currentSchema: a crash before its commit leaves the file at schema 1, migrated at the next
// open.
func migrateIndexes(tx *bbolt.Tx) error {
	for _, name := range [][]byte{bucketSoftware, bucketOrg} {
		if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
			return err
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketRegistrations).ForEach(func(k, v []byte) error {
		rec, err := decodeStored(tx, k, v)
		if err != nil {
			return err
		}
		if rec.Deleted() {
			return nil
		}
		for _, e := range indexEntries(rec) {
			if err := tx.Bucket(e.bucket).Put(indexKey(e.id, rec), nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// pooledDB is one open file and the goroutine that group-commits its writes.
type pooledDB struct {
	*bbolt.DB
	commit *committer
}

// Destruct stops the committer (writes still queued are answered errClosed) and closes the
// file, which releases its lock; the pool calls it when the last Store on the file is gone.
func (p *pooledDB) Destruct() error {
	p.commit.stop()
	if err := p.DB.Close(); err != nil {
		return fmt.Errorf("bolt: closing %s: %w", p.Path(), err)
	}
	return nil
}

// acquireDB returns the pooled database of path (absolute), opening it on first use. Every
// successful call must be matched by dbs.Delete(path).
func acquireDB(path string, lockTimeout time.Duration) (*pooledDB, error) {
	v, _, err := dbs.LoadOrNew(path, func() (caddy.Destructor, error) {
		return openDB(path, lockTimeout)
	})
	if err != nil {
		return nil, err
	}
	return v.(*pooledDB), nil
}

func openDB(path string, lockTimeout time.Duration) (*pooledDB, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		// bbolt takes an exclusive flock on the file; without a timeout a second Caddy
		// would hang at start instead of saying why it cannot.
		Timeout:      lockTimeout,
		FreelistType: bbolt.FreelistMapType,
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s is held by another Caddy process (only one process may use a registry file at a time): "+
			"stop that process, or give this one its own file with `storage bolt { path <file> }`", errAnotherProcess, path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return nil, fmt.Errorf("%w: %s: %v", errNotADatabase, path, err)
	case err != nil:
		return nil, fmt.Errorf("bolt: opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch schema := meta.Get(metaSchema); {
		case schema == nil:
			return meta.Put(metaSchema, currentSchema)
		case string(schema) == string(schema1):
			if err := migrateIndexes(tx); err != nil {
				return fmt.Errorf("bolt: migrating the index entries from schema 1: %w", err)
			}
			return meta.Put(metaSchema, currentSchema)
		case string(schema) != string(currentSchema):
			return fmt.Errorf("%w (schema %q, this one reads %q)", errUnknownSchema, schema, currentSchema)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: preparing %s: %w", path, err)
	}
	// The file may hold hashes of consumed tokens and the registrations' credential hashes.
	if err := os.Chmod(path, 0o600); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: %w", err)
	}
	return &pooledDB{DB: db, commit: newCommitter(db)}, nil
}

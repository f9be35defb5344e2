package redis

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dcrgate/dcrgate/dcr"
)

// Create stores rec with version 1 unless its client_id is taken by a record or a tombstone
// or one of the commits' keys is used; the record, its index entries, the keys and the event
// are written by one script, all or nothing.
func (s *Store) Create(ctx context.Context, rec *dcr.Registration, with ...dcr.Commit) error {
	if rec.ClientID == "" {
		return errors.New("redis store: Create without a client_id")
	}
	commit, err := s.prepareCommit(with, rec.ClientID)
	if err != nil {
		return err
	}
	if err := s.checkCommit(ctx, commit); err != nil {
		return err
	}
	stored := rec.Clone()
	stored.Version = 1
	data, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("redis store: encoding registration: %w", err)
	}
	regKey := s.registrationKey(rec.ClientID)
	keys := []string{regKey, s.softwareIndexKey(rec.SoftwareID), s.orgIndexKey(rec.OrgID)}
	writeID := newWriteID()
	var result int64
	err = s.write(ctx, regKey, func(c goredis.Scripter) error {
		var err error
		result, err = createScript.Run(ctx, c, append(keys, commit.keys...),
			append([]any{rec.ClientID, rec.SoftwareID, rec.OrgID, data, writeID}, commit.args...)...).Int64()
		return err
	})
	created := result == 1
	var unacked *notReplicatedError
	if errors.As(err, &unacked) && created {
		// Not acknowledged means not registered: take it back rather than leave a record
		// whose client never got its credentials. If that fails too, the record stays, with
		// no token holder: harmless, and the 503 tells the client to register again.
		if derr := discardScript.Run(context.WithoutCancel(ctx), s.client, append(keys, commit.keys...), rec.ClientID, writeID, commit.entry).Err(); derr != nil {
			return errors.Join(err, storeErr("discarding an unacknowledged registration", derr))
		}
		return err
	}
	if err != nil {
		return storeErr("create", err)
	}
	if used := commit.used(result); used != nil {
		return used
	}
	if !created {
		return dcr.ErrExists
	}
	rec.Version = 1
	return nil
}

// Get returns the live record of clientID.
func (s *Store) Get(ctx context.Context, clientID string) (*dcr.Registration, error) {
	vals, err := s.client.HMGet(ctx, s.registrationKey(clientID), "version", "deleted_at", "record").Result()
	if err != nil {
		return nil, storeErr("get", err)
	}
	if vals[0] == nil || vals[1] != nil || vals[2] == nil {
		return nil, dcr.ErrNotFound
	}
	version, err := strconv.ParseInt(fmt.Sprint(vals[0]), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("redis store: registration has a bad version: %w", err)
	}
	data, _ := vals[2].(string)
	var rec dcr.Registration
	if err := json.Unmarshal([]byte(data), &rec); err != nil {
		return nil, fmt.Errorf("redis store: decoding registration: %w", err)
	}
	rec.Version = version
	return &rec, nil
}

// Update replaces the record if it is still at rec.Version, moving its index entries if its
// software_id or org_id changed, with the commits, in one script.
func (s *Store) Update(ctx context.Context, rec *dcr.Registration, with ...dcr.Commit) error {
	commit, err := s.prepareCommit(with, rec.ClientID)
	if err != nil {
		return err
	}
	if err := s.checkCommit(ctx, commit); err != nil {
		return err
	}
	regKey := s.registrationKey(rec.ClientID)
	old, err := s.indexedIDs(ctx, regKey)
	if err != nil {
		return err
	}
	stored := rec.Clone()
	stored.Version = rec.Version + 1
	data, err := json.Marshal(stored)
	if err != nil {
		return fmt.Errorf("redis store: encoding registration: %w", err)
	}
	keys := []string{regKey,
		s.softwareIndexKey(old.softwareID), s.orgIndexKey(old.orgID),
		s.softwareIndexKey(rec.SoftwareID), s.orgIndexKey(rec.OrgID)}
	var result int64
	err = s.write(ctx, regKey, func(c goredis.Scripter) error {
		var err error
		result, err = updateScript.Run(ctx, c, append(keys, commit.keys...), append([]any{rec.ClientID, strconv.FormatInt(rec.Version, 10),
			rec.SoftwareID, rec.OrgID, data, newWriteID()}, commit.args...)...).Int64()
		return err
	})
	if err != nil {
		return storeErr("update", err)
	}
	if used := commit.used(result); used != nil {
		return used
	}
	switch result {
	case scriptNotFound:
		return dcr.ErrNotFound
	case scriptConflict:
		return dcr.ErrConflict
	}
	rec.Version = result
	return nil
}

// Delete turns the record into a tombstone and removes it from the indexes, with the
// commits, in one script.
func (s *Store) Delete(ctx context.Context, clientID string, version int64, with ...dcr.Commit) error {
	commit, err := s.prepareCommit(with, clientID)
	if err != nil {
		return err
	}
	if err := s.checkCommit(ctx, commit); err != nil {
		return err
	}
	regKey := s.registrationKey(clientID)
	old, err := s.indexedIDs(ctx, regKey)
	if err != nil {
		return err
	}
	keys := []string{regKey, s.softwareIndexKey(old.softwareID), s.orgIndexKey(old.orgID)}
	var result int64
	err = s.write(ctx, regKey, func(c goredis.Scripter) error {
		var err error
		result, err = deleteScript.Run(ctx, c, append(keys, commit.keys...), append([]any{clientID, strconv.FormatInt(version, 10),
			time.Now().UTC().Format(time.RFC3339Nano), newWriteID()}, commit.args...)...).Int64()
		return err
	})
	if err != nil {
		return storeErr("delete", err)
	}
	if used := commit.used(result); used != nil {
		return used
	}
	switch result {
	case scriptNotFound:
		return dcr.ErrNotFound
	case scriptConflict:
		return dcr.ErrConflict
	}
	return nil
}

// ListBySoftware returns the live client_ids of softwareID.
func (s *Store) ListBySoftware(ctx context.Context, softwareID string) ([]string, error) {
	ids, err := s.client.SMembers(ctx, s.softwareIndexKey(softwareID)).Result()
	if err != nil {
		return nil, storeErr("list by software_id", err)
	}
	return ids, nil
}

// ListByOrg returns the live client_ids of orgID.
func (s *Store) ListByOrg(ctx context.Context, orgID string) ([]string, error) {
	ids, err := s.client.SMembers(ctx, s.orgIndexKey(orgID)).Result()
	if err != nil {
		return nil, storeErr("list by org_id", err)
	}
	return ids, nil
}

type indexedIDs struct{ softwareID, orgID string }

// indexedIDs reads the ids a record is indexed under; for a missing record they are empty
// and the script that follows reports ErrNotFound.
func (s *Store) indexedIDs(ctx context.Context, regKey string) (indexedIDs, error) {
	vals, err := s.client.HMGet(ctx, regKey, "software_id", "org_id").Result()
	if err != nil {
		return indexedIDs{}, storeErr("read", err)
	}
	sw, _ := vals[0].(string)
	org, _ := vals[1].(string)
	return indexedIDs{sw, org}, nil
}

// newWriteID returns 128 random bits (base32 text).
func newWriteID() string {
	return rand.Text()
}

package redis

import (
	"context"
	"encoding/json"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dcrgate/dcrgate/dcr"
)

// The deny list is one hash under the registry's hash tag: field kind NUL id, value the
// entry's JSON. It is bounded (dcr.MaxDenyListEntries), so HGETALL reads it whole.

func (s *Store) denyListKey() string {
	return "{" + s.Prefix + "}:deny"
}

func denyField(kind dcr.DenyKind, id string) string {
	return string(kind) + "\x00" + id
}

// addDenialScript: KEYS deny list; ARGV field, entry, limit. Returns 1 when it stored the
// entry (or finds this very entry there: a resent command whose reply was lost), 0 when
// another entry has the field, -1 when the list is full.
var addDenialScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  if cur == ARGV[2] then return 1 end
  return 0
end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// AddDenial stores e atomically, bounded by limit; with min_replicas_ack it waits for the
// replicas as a registration write does.
func (s *Store) AddDenial(ctx context.Context, e dcr.DenyEntry, limit int) (bool, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("redis store: encoding a deny list entry: %w", err)
	}
	key := s.denyListKey()
	var n int
	err = s.write(ctx, key, func(c goredis.Scripter) error {
		var err error
		n, err = addDenialScript.Run(ctx, c, []string{key}, denyField(e.Kind, e.ID), string(data), limit).Int()
		return err
	})
	switch {
	case err != nil:
		return false, storeErr("add denial", err)
	case n < 0:
		return false, dcr.ErrDenyListFull
	}
	return n == 1, nil
}

// Denials reads the org's and the software's fields.
func (s *Store) Denials(ctx context.Context, orgID, softwareID string) ([]dcr.DenyEntry, error) {
	vals, err := s.client.HMGet(ctx, s.denyListKey(), denyField(dcr.DenyOrg, orgID), denyField(dcr.DenySoftware, softwareID)).Result()
	if err != nil {
		return nil, storeErr("denials", err)
	}
	var out []dcr.DenyEntry
	for i, v := range vals {
		str, ok := v.(string)
		if !ok || (i == 0 && orgID == "") || (i == 1 && softwareID == "") {
			continue
		}
		e, err := decodeDenyEntry(str)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// DenyList reads the hash, sorted.
func (s *Store) DenyList(ctx context.Context) ([]dcr.DenyEntry, error) {
	all, err := s.client.HGetAll(ctx, s.denyListKey()).Result()
	if err != nil {
		return nil, storeErr("deny list", err)
	}
	out := make([]dcr.DenyEntry, 0, len(all))
	for _, v := range all {
		e, err := decodeDenyEntry(v)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	dcr.SortDenyList(out)
	return out, nil
}

// liftDenialScript: KEYS deny list; ARGV field. Returns the number of fields removed.
var liftDenialScript = goredis.NewScript(`return redis.call('HDEL', KEYS[1], ARGV[1])`)

// LiftDenial deletes the field (a script, so that it goes through write like every change).
func (s *Store) LiftDenial(ctx context.Context, kind dcr.DenyKind, id string) (bool, error) {
	key := s.denyListKey()
	var n int
	err := s.write(ctx, key, func(c goredis.Scripter) error {
		var err error
		n, err = liftDenialScript.Run(ctx, c, []string{key}, denyField(kind, id)).Int()
		return err
	})
	if err != nil {
		return false, storeErr("lift denial", err)
	}
	return n == 1, nil
}

func decodeDenyEntry(v string) (dcr.DenyEntry, error) {
	var e dcr.DenyEntry
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return e, fmt.Errorf("redis store: decoding a deny list entry: %w", err)
	}
	return e, nil
}

package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dcrgate/dcrgate/dcr"
)

// listBatch is how many records one pipelined round trip reads.
const listBatch = 100

// List answers q. With a software_id or org_id it reads that index set (SMEMBERS), sorts the
// client_ids and reads only the records after the cursor, in batches, until the page is full;
// an unfiltered listing SCANs the registry's keys (on every master of a Cluster: they share
// one hash tag, so one of them holds them all).
func (s *Store) List(ctx context.Context, q dcr.ListQuery) (dcr.ListPage, error) {
	if err := q.Validate(); err != nil {
		return dcr.ListPage{}, err
	}
	var keys []string
	switch {
	case q.SoftwareID != "", q.OrgID != "":
		index := s.softwareIndexKey(q.SoftwareID)
		if q.SoftwareID == "" {
			index = s.orgIndexKey(q.OrgID)
		}
		ids, err := s.client.SMembers(ctx, index).Result()
		if err != nil {
			return dcr.ListPage{}, storeErr("list", err)
		}
		slices.Sort(ids)
		ids = slices.DeleteFunc(ids, func(id string) bool { return id <= q.After })
		for _, id := range ids {
			keys = append(keys, s.registrationKey(id))
		}
		return dcr.CollectPage(q, s.records(ctx, keys))
	}
	keys, err := s.scanRegistrations(ctx)
	if err != nil {
		return dcr.ListPage{}, err
	}
	var recs []*dcr.Registration
	for rec, err := range s.records(ctx, keys) {
		if err != nil {
			return dcr.ListPage{}, err
		}
		if rec.ClientID > q.After {
			recs = append(recs, rec)
		}
	}
	slices.SortFunc(recs, func(a, b *dcr.Registration) int { return strings.Compare(a.ClientID, b.ClientID) })
	return dcr.CollectPage(q, dcr.Records(recs))
}

// records yields the records (live or tombstones) at keys, in order, skipping keys that hold
// none (removed since the index or scan named them).
func (s *Store) records(ctx context.Context, keys []string) func(func(*dcr.Registration, error) bool) {
	return func(yield func(*dcr.Registration, error) bool) {
		for batch := range slices.Chunk(keys, listBatch) {
			cmds := make([]*goredis.SliceCmd, len(batch))
			_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for i, k := range batch {
					cmds[i] = p.HMGet(ctx, k, "version", "deleted_at", "record")
				}
				return nil
			})
			if err != nil {
				yield(nil, storeErr("list", err))
				return
			}
			for _, cmd := range cmds {
				rec, err := decodeStored(cmd.Val())
				if rec == nil && err == nil {
					continue
				}
				if !yield(rec, err) {
					return
				}
			}
		}
	}
}

// decodeStored decodes the HMGET of version, deleted_at and record; nil without an error when
// the key holds no record.
func decodeStored(vals []any) (*dcr.Registration, error) {
	if len(vals) != 3 || vals[0] == nil || vals[2] == nil {
		return nil, nil
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
	rec.DeletedAt = nil
	if d, ok := vals[1].(string); ok {
		t, err := time.Parse(time.RFC3339Nano, d)
		if err != nil {
			return nil, fmt.Errorf("redis store: registration has a bad deleted_at: %w", err)
		}
		rec.DeletedAt = &t
	}
	return &rec, nil
}

// scanRegistrations returns every registration key.
func (s *Store) scanRegistrations(ctx context.Context) ([]string, error) {
	pattern := globEscape(s.registrationKey("")[:len(s.registrationKey(""))-len(hashID(""))]) + "*"
	var keys []string
	scan := func(ctx context.Context, c goredis.Cmdable) error {
		iter := c.Scan(ctx, 0, pattern, 500).Iterator()
		var found []string
		for iter.Next(ctx) {
			found = append(found, iter.Val())
		}
		if err := iter.Err(); err != nil {
			return err
		}
		keys = append(keys, found...)
		return nil
	}
	var err error
	if cc, ok := s.client.(*goredis.ClusterClient); ok {
		var mu = make(chan struct{}, 1)
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			mu <- struct{}{}
			defer func() { <-mu }()
			return scan(ctx, c)
		})
	} else {
		err = scan(ctx, s.client)
	}
	if err != nil {
		return nil, storeErr("list", err)
	}
	slices.Sort(keys)
	return slices.Compact(keys), nil
}

// globEscape escapes the glob characters of SCAN's MATCH.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

package caddystorage

import (
	"context"
	"errors"
	"path"
	"slices"
	"strings"

	"github.com/dcrgate/dcrgate/dcr"
)

// List answers q. Records are named by the hash of their client_id, so no storage listing
// comes in client_id order: the candidates (the entries of the software_id or org_id index
// when q names one, else every record) are loaded and sorted before the page is cut. With an
// index that is the index's records only; an unfiltered listing reads the registry, which is
// what it shows.
func (s *Store) List(ctx context.Context, q dcr.ListQuery) (dcr.ListPage, error) {
	if err := q.Validate(); err != nil {
		return dcr.ListPage{}, err
	}
	var hashes []string
	switch {
	case q.SoftwareID != "":
		keys, err := s.listKeys(ctx, s.indexDir(indexSoftware, q.SoftwareID))
		if err != nil {
			return dcr.ListPage{}, err
		}
		hashes = namesOf(keys, "")
	case q.OrgID != "":
		keys, err := s.listKeys(ctx, s.indexDir(indexOrg, q.OrgID))
		if err != nil {
			return dcr.ListPage{}, err
		}
		hashes = namesOf(keys, "")
	default:
		keys, err := s.listKeys(ctx, s.Prefix+"/registrations")
		if err != nil {
			return dcr.ListPage{}, err
		}
		hashes = namesOf(keys, ".json")
	}
	recs := make([]*dcr.Registration, 0, len(hashes))
	for _, h := range hashes {
		rec, err := s.loadRecord(ctx, s.recordKey(h))
		if errors.Is(err, dcr.ErrNotFound) {
			continue // an index entry of a crashed Create, or a record deleted meanwhile
		}
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

// namesOf returns the hash names among storage keys whose last segment is a hash followed by
// suffix, skipping anything else in the directory.
func namesOf(keys []string, suffix string) []string {
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		name, ok := strings.CutSuffix(path.Base(k), suffix)
		if ok && isHash(name) {
			names = append(names, name)
		}
	}
	return names
}

package redis

import (
	"crypto/sha256"
	"encoding/hex"
)

// Every key carries the hash tag {prefix} (see the package doc).

func (s *Store) registrationKey(clientID string) string {
	return "{" + s.Prefix + "}:reg:" + hashID(clientID)
}

func (s *Store) softwareIndexKey(softwareID string) string {
	return "{" + s.Prefix + "}:software:" + hashID(softwareID)
}

func (s *Store) orgIndexKey(orgID string) string {
	return "{" + s.Prefix + "}:org:" + hashID(orgID)
}

// onceKey hashes the key: one-time keys can be consumed tokens, which must not sit in Redis
// in the clear. It carries the registry's hash tag, so that a registration's script can
// claim its keys with it (one Cluster slot).
func (s *Store) onceKey(key string) string {
	return "{" + s.Prefix + "}:once:" + hashID(key)
}

// legacyOnceKey is where releases before one-time keys were claimed with their registration
// kept a key (no hash tag). Nothing writes there any more; a key found there is still used
// until it expires, so an upgrade lets no replay through.
func (s *Store) legacyOnceKey(key string) string {
	return s.Prefix + ":once:" + hashID(key)
}

func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

package redis

import (
	"crypto/sha256"
	"encoding/hex"
)

// Registry keys carry the hash tag {prefix} (see the package doc); one-time keys none.

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
// in the clear.
func (s *Store) onceKey(key string) string {
	return s.Prefix + ":once:" + hashID(key)
}

func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// Package secret issues and checks the credentials a registrar hands out once: the RFC 7592
// registration access token and the client secret. They are stored only as hashes (Hash) and
// compared in constant time (Matches).
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"strings"
)

// NewToken returns a registration access token: 256 random bits, base64url.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ClientSecretLength is the length of a client secret: 36, the OB maximum.
const ClientSecretLength = 36

// NewClientSecret returns a 36-character base62 secret (about 214 bits).
func NewClientSecret() (string, error) {
	var sb strings.Builder
	max := big.NewInt(int64(len(base62)))
	for range ClientSecretLength {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		sb.WriteByte(base62[n.Int64()])
	}
	return sb.String(), nil
}

// Hash is how tokens and secrets are stored: hex SHA-256. The inputs carry 200+ random bits,
// so a fast unsalted hash is enough.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Matches reports, in constant time, whether s is the secret stored as hash. An empty s or
// hash never matches.
func Matches(s, hash string) bool {
	if s == "" || hash == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(Hash(s)), []byte(hash)) == 1
}

package dcr

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"strings"
)

// The credentials a registrar issues, and how the gateway keeps them: every registrar issues
// the RFC 7592 registration access token the same way, whoever the backend is, and the
// handler checks it against the stored hash.

// NewRegistrationToken returns an RFC 7592 registration access token: 256 random bits,
// base64url.
func NewRegistrationToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ClientSecretLength is the length of a client secret the gateway issues: the OB maximum.
const ClientSecretLength = 36

// NewClientSecret returns a ClientSecretLength-character base62 secret (about 214 bits).
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

// HashSecret is how tokens and secrets are stored: hex SHA-256. The inputs carry 200+ random
// bits, so a fast unsalted hash is enough.
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// SecretMatches reports, in constant time, whether secret is the one whose HashSecret is
// hash. An empty secret or hash never matches.
func SecretMatches(secret, hash string) bool {
	return secret != "" && hash != "" && subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(hash)) == 1
}

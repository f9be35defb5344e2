package sandbox

import (
	"crypto/rand"
	"crypto/sha256"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// orgIDPrefix is the fixed part of OB directory organisation ids (e.g. 0015800001HQQrZAAX).
const orgIDPrefix = "0015800001"

// NewOrgID returns an OB-shaped organisation id: "0015800001" and 8 random base62 characters.
func NewOrgID() (string, error) {
	suffix, err := randomBase62(8)
	if err != nil {
		return "", err
	}
	return orgIDPrefix + suffix, nil
}

// NewSoftwareID returns an OB-shaped software id: 22 random base62 characters.
func NewSoftwareID() (string, error) { return randomBase62(22) }

// randomBase62 draws n characters uniformly (rejection sampling keeps the bias out: 248 is
// the largest multiple of 62 below 256).
func randomBase62(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if b < 248 && len(out) < n {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out), nil
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

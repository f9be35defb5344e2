package dcr

import (
	"encoding/base64"
	"regexp"
	"testing"
)

func TestNewRegistrationToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, err := NewRegistrationToken()
		if err != nil {
			t.Fatal(err)
		}
		b, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(b) != 32 {
			t.Fatalf("token %q is not 32 bytes of base64url: %v", tok, err)
		}
		if seen[tok] {
			t.Fatalf("token %q issued twice", tok)
		}
		seen[tok] = true
	}
}

func TestNewClientSecret(t *testing.T) {
	base62 := regexp.MustCompile(`^[0-9A-Za-z]{36}$`)
	seen := map[string]bool{}
	for range 100 {
		s, err := NewClientSecret()
		if err != nil {
			t.Fatal(err)
		}
		if !base62.MatchString(s) || seen[s] {
			t.Fatalf("secret %q: not 36 base62 characters, or issued twice", s)
		}
		seen[s] = true
	}
}

func TestSecretMatches(t *testing.T) {
	// SHA-256("abc").
	const hashABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if HashSecret("abc") != hashABC {
		t.Fatalf("HashSecret(abc) = %s", HashSecret("abc"))
	}
	tests := []struct {
		secret, hash string
		want         bool
	}{
		{"abc", hashABC, true},
		{"abd", hashABC, false},
		{"abc", hashABC[:63], false},
		{"", HashSecret(""), false},
		{"abc", "", false},
		{"abc", "abc", false},
	}
	for _, tc := range tests {
		if got := SecretMatches(tc.secret, tc.hash); got != tc.want {
			t.Errorf("SecretMatches(%q, %q) = %v, want %v", tc.secret, tc.hash, got, tc.want)
		}
	}
}

package secret

import (
	"regexp"
	"testing"
)

func TestNewToken(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`).MatchString(a) || a == b {
		t.Fatalf("tokens %q %q: want distinct 256-bit base64url values", a, b)
	}
}

func TestNewClientSecret(t *testing.T) {
	s, err := NewClientSecret()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9A-Za-z]{36}$`).MatchString(s) {
		t.Fatalf("secret %q is not 36 base62 characters", s)
	}
}

func TestMatches(t *testing.T) {
	h := Hash("token-1")
	if h != "3f08aace122ee2368432c1ca23a049bc640bafbf00fdf33a52429f38ba12dbf9" {
		t.Fatalf("hash %q is not hex SHA-256", h)
	}
	for _, tc := range []struct {
		name, s, hash string
		want          bool
	}{
		{"the token", "token-1", h, true},
		{"another token", "token-2", h, false},
		{"the hash itself", h, h, false},
		{"no token", "", h, false},
		{"no stored hash", "token-1", "", false},
		{"empty against the hash of empty", "", Hash(""), false},
	} {
		if got := Matches(tc.s, tc.hash); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

package jwks

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/jose"
)

func TestRevokedSet(t *testing.T) {
	k1, k2 := newTestKey(t, "k1"), newTestKey(t, "k2")
	srv := newJWKSServer(t, []byte(`{"keys": []}`))
	f, clock := newTestFetcher(t, srv, FetcherConfig{})
	url := srv.URL + "/revoked"
	ctx := context.Background()

	// An empty revoked set is a good answer: nothing is revoked.
	listed, err := f.RevokedSet(ctx, url)
	if err != nil || len(listed) != 0 {
		t.Fatalf("empty set: %v, %v", listed, err)
	}
	wantHits(t, srv, 1)

	// Cached for the lifetime of the response, then refetched.
	srv.set(http.StatusOK, setJSON(t, k1, k2), http.Header{"Cache-Control": {"max-age=120"}})
	if listed, _ = f.RevokedSet(ctx, url); len(listed) != 0 {
		t.Fatalf("cached empty set: %v", listed)
	}
	wantHits(t, srv, 1)
	clock.Advance(2 * time.Hour)
	listed, err = f.RevokedSet(ctx, url)
	if err != nil || len(listed) != 2 || listed[0].KeyID != "k1" || listed[1].KeyID != "k2" {
		t.Fatalf("set of two: %+v, %v", listed, err)
	}
	want, err := Thumbprint(k1.public(t))
	if err != nil || listed[0].Thumbprint != want || want == "" {
		t.Fatalf("thumbprint = %q, want %q (%v)", listed[0].Thumbprint, want, err)
	}

	// A failing origin: the last good set keeps being served.
	srv.set(http.StatusInternalServerError, []byte("down"), nil)
	clock.Advance(3 * time.Minute)
	if listed, err = f.RevokedSet(ctx, url); err != nil || len(listed) != 2 {
		t.Fatalf("stale set: %v, %v", listed, err)
	}

	// The same URL read as a key set is cached apart (and an empty set is no key set).
	srv.set(http.StatusOK, []byte(`{"keys": []}`), nil)
	if _, err := f.Key(ctx, url, "k1"); !errors.Is(err, jose.ErrKeyUnavailable) {
		t.Fatalf("empty set as a key set: %v", err)
	}
}

func TestRevokedSetUnavailable(t *testing.T) {
	srv := newJWKSServer(t, []byte("down"))
	srv.set(http.StatusServiceUnavailable, []byte("down"), nil)
	f, _ := newTestFetcher(t, srv, FetcherConfig{})
	_, err := f.RevokedSet(context.Background(), srv.URL+"/revoked")
	if !errors.Is(err, ErrFetch) || !errors.Is(err, jose.ErrKeyUnavailable) {
		t.Fatalf("err = %v, want ErrFetch and ErrKeyUnavailable", err)
	}
	if _, err := f.RevokedSet(context.Background(), "http://example.com/revoked"); !errors.Is(err, ErrNotHTTPS) {
		t.Fatalf("http URL: %v", err)
	}
}

func TestParseRevoked(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		ok   bool
	}{
		{"empty", `{"keys":[]}`, true},
		{"no keys member", `{}`, false},
		{"null keys", `{"keys":null}`, false},
		{"not JSON", `<html>`, false},
		{"not a key", `{"keys":[{"kty":"nope"}]}`, false},
		{"key without kid", `{"keys":[{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			listed, err := parseRevoked([]byte(tc.data))
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidSet) {
				t.Fatalf("err = %v, want ErrInvalidSet", err)
			}
			for _, l := range listed {
				if l.Thumbprint == "" {
					t.Fatalf("no thumbprint: %+v", l)
				}
			}
		})
	}
}

func FuzzParseRevoked(f *testing.F) {
	f.Add(setJSON(f, newTestKey(f, "k1")))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		listed, err := parseRevoked(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidSet) {
				t.Fatalf("error does not wrap ErrInvalidSet: %v", err)
			}
			return
		}
		if len(listed) > MaxRevokedKeys {
			t.Fatalf("accepted %d keys", len(listed))
		}
		for _, l := range listed {
			if l.Thumbprint == "" {
				t.Fatal("a listed key without thumbprint")
			}
		}
	})
}

package revokedkeys

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jwks"
)

const (
	swURL  = "https://dir.example/sw.revoked.json"
	orgURL = "https://dir.example/org.revoked.json"
)

func sw(listed ...jwks.Listed) Set {
	return Set{RevokedKeySet: dcr.RevokedKeySet{Claim: dcr.ClaimSoftwareJWKSRevoked, URL: swURL}, Listed: listed}
}

func org(listed ...jwks.Listed) Set {
	return Set{RevokedKeySet: dcr.RevokedKeySet{Claim: dcr.ClaimOrgJWKSRevoked, URL: orgURL}, Listed: listed}
}

func down(s Set) Set {
	s.Err = errors.New("connection refused")
	return s
}

func TestCheck(t *testing.T) {
	key := dcr.RegisteredKey{KeyID: "k1", Thumbprint: "tp1"}
	other := jwks.Listed{KeyID: "k9", Thumbprint: "tp9"}
	for _, tc := range []struct {
		name        string
		cfg         Config
		sets        []Set
		revokedBy   string // URL, "" = not revoked
		matchedBy   string
		checked     bool
		unavailable int
		status      int // of RequestError, 0 = nil
	}{
		{"no sets: not checked", Config{}, nil, "", "", false, 0, 0},
		{"empty sets", Config{}, []Set{sw(), org()}, "", "", true, 0, 0},
		{"other keys listed", Config{}, []Set{sw(other), org(other)}, "", "", true, 0, 0},
		{"listed by kid in the software set", Config{}, []Set{sw(other, jwks.Listed{KeyID: "k1", Thumbprint: "x"}), org()}, swURL, "kid", true, 0, 400},
		{"listed by thumbprint in the org set", Config{}, []Set{sw(), org(jwks.Listed{KeyID: "renamed", Thumbprint: "tp1"})}, orgURL, "thumbprint", true, 0, 400},
		{"listed, the other set down, hard", Config{FailMode: FailHard}, []Set{down(sw()), org(jwks.Listed{KeyID: "k1"})}, orgURL, "kid", true, 1, 400},
		{"one set down, hard (default)", Config{}, []Set{down(sw()), org()}, "", "", true, 1, 503},
		{"both down, hard", Config{}, []Set{down(sw()), down(org())}, "", "", false, 2, 503},
		{"both down, soft", Config{FailMode: FailSoft}, []Set{down(sw()), down(org())}, "", "", false, 2, 0},
		{"one down, soft", Config{FailMode: FailSoft}, []Set{sw(), down(org())}, "", "", true, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Check(tc.cfg, key, tc.sets)
			got := ""
			if o.RevokedBy != nil {
				got = o.RevokedBy.URL
			}
			if got != tc.revokedBy || o.MatchedBy != tc.matchedBy || o.Revoked() != (tc.revokedBy != "") {
				t.Fatalf("revoked by %q (%s), want %q (%s)", got, o.MatchedBy, tc.revokedBy, tc.matchedBy)
			}
			if o.Facts.Checked != tc.checked || len(o.Facts.Unavailable) != tc.unavailable || len(o.Failed) != tc.unavailable {
				t.Fatalf("facts = %+v, want checked=%v, %d unavailable", o.Facts, tc.checked, tc.unavailable)
			}
			if len(o.Facts.Sources) != len(tc.sets) {
				t.Fatalf("sources = %v", o.Facts.Sources)
			}
			wantMode := tc.cfg.FailMode
			if wantMode == "" {
				wantMode = FailHard
			}
			if o.Facts.FailMode != wantMode {
				t.Fatalf("fail mode = %q", o.Facts.FailMode)
			}
			derr := o.RequestError(key)
			switch {
			case tc.status == 0 && derr != nil, tc.status != 0 && (derr == nil || derr.Status != tc.status):
				t.Fatalf("RequestError = %v, want status %d", derr, tc.status)
			case tc.status == 400:
				if derr.Code != dcr.CodeInvalidClientMetadata || !strings.Contains(derr.Description, `"k1" is revoked`) || !strings.Contains(derr.Description, tc.revokedBy) {
					t.Fatalf("description = %q", derr.Description)
				}
			case tc.status == 503:
				if derr.Code != dcr.CodeTemporarilyUnavailable || derr.Header.Get("Retry-After") == "" || derr.Cause == nil {
					t.Fatalf("503 = %+v", derr)
				}
			}

			vote, err := o.ManagementVote(key)
			switch tc.status {
			case 400:
				if err != nil || !strings.HasPrefix(vote.Refusal, ReasonRevoked+":") || vote.Grant {
					t.Fatalf("vote = %+v, %v", vote, err)
				}
			case 503:
				if vote != (dcr.Vote{}) || dcr.AsError(err).Status != http.StatusServiceUnavailable {
					t.Fatalf("vote = %+v, %v", vote, err)
				}
			default:
				if vote != (dcr.Vote{}) || err != nil {
					t.Fatalf("vote = %+v, %v", vote, err)
				}
			}
		})
	}
}

func TestLists(t *testing.T) {
	s := sw(jwks.Listed{KeyID: "", Thumbprint: ""}, jwks.Listed{KeyID: "a", Thumbprint: "ta"})
	for _, tc := range []struct {
		key  dcr.RegisteredKey
		how  string
		want bool
	}{
		{dcr.RegisteredKey{KeyID: "a"}, "kid", true},
		{dcr.RegisteredKey{Thumbprint: "ta"}, "thumbprint", true},
		{dcr.RegisteredKey{KeyID: "b", Thumbprint: "tb"}, "", false},
		// Empty names never match an entry without them.
		{dcr.RegisteredKey{}, "", false},
	} {
		how, got := Lists(s, tc.key)
		if got != tc.want || how != tc.how {
			t.Errorf("Lists(%+v) = %q, %v; want %q, %v", tc.key, how, got, tc.how, tc.want)
		}
	}
}

func TestConfig(t *testing.T) {
	for mode, ok := range map[string]bool{"": true, FailHard: true, FailSoft: true, "open": false, "HARD": false} {
		c := Config{FailMode: mode}
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("Validate(%q) = %v", mode, err)
		}
	}
	var c Config
	c.SetDefaults()
	if c.FailMode != FailHard {
		t.Fatalf("default fail mode %q", c.FailMode)
	}
}

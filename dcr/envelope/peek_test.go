package envelope

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
)

// referenceIssJTI reads iss and jti as encoding/json does (exact member names, the last of
// duplicates): what PeekReplayKey must agree with.
func referenceIssJTI(payload []byte) (iss, jti string, ok bool) {
	var m map[string]any
	if json.Unmarshal(payload, &m) != nil {
		return "", "", false
	}
	iss, a := m["iss"].(string)
	jti, b := m["jti"].(string)
	return iss, jti, a && b && iss != "" && jti != "" && len(iss) <= maxLookupIssuerLength && len(jti) <= 256
}

var peekSeeds = []string{
	`{"iss":"sw","jti":"j1"}`,
	` { "aud" : ["a", {"x": "}"}], "iss" : "sw" , "n": 12.5e3, "t": true, "jti":"j1", "z": null } `,
	`{"software_statement":"eyJ.a\"b}c.d","iss":"sw","jti":"j1"}`,
	`{"iss":"s\u0077","jti":"j1"}`,
	`{"iss":"sw","jti":"j1","jti":"j2"}`,
	`{"i\u0073s":"sw","jti":"j1"}`,
	`{"ISS":"sw","jti":"j1"}`,
	`{"iss":7,"jti":"j1"}`,
	`{"iss":"sw","jti":"j1"`,
	`{"iss":"sw","jti":"j1"}x`,
	`{"iss":"sw","jti":"j1",}`,
	`{"iss":"sw","nested":{"jti":"inner"},"jti":"outer"}`,
	`{"a":[1,2,[3,{"b":"]"}]],"iss":"sw","jti":"j1"}`,
	"{\"iss\":\"sw\",\"jti\":\"j\xff\"}",
	`{}`, `[]`, `"iss"`, ``, `{"iss":"sw"}`, "{\"iss\":\"s\x01w\",\"jti\":\"j\"}",
}

// TestPeekAgreesWithEncodingJSON: for every seed PeekReplayKey finds the key encoding/json
// finds, or none where encoding/json finds none.
func TestPeekAgreesWithEncodingJSON(t *testing.T) {
	for _, payload := range peekSeeds {
		checkPeek(t, []byte(payload))
	}
}

func FuzzPeekReplayKey(f *testing.F) {
	for _, s := range peekSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) { checkPeek(t, payload) })
}

func checkPeek(t *testing.T, payload []byte) {
	t.Helper()
	key, jti, ok := PeekReplayKey(peekBody(payload))
	wantIss, wantJTI, wantOK := referenceIssJTI(payload)
	if wantOK {
		if !ok || key != ReplayKey(wantIss, wantJTI) || jti != wantJTI {
			t.Fatalf("%q: key %q %v, want %q", payload, key, ok, ReplayKey(wantIss, wantJTI))
		}
		return
	}
	if ok && json.Valid(payload) {
		t.Fatalf("%q: key %q from a payload encoding/json reads no iss and jti from", payload, key)
	}
}

// TestPeekLongStrings: the scan reads strings eight bytes at a time; a quote, a backslash, a
// control character or invalid UTF-8 at any offset of a long string (of the skipped value, of
// iss, of jti, of a member name) is found where encoding/json finds it.
func TestPeekLongStrings(t *testing.T) {
	for _, special := range []string{`\"`, `\\`, `\u0041`, "\x01", "\x1f", "\"", "\xff", "é", "\x7f", "\x80"} {
		for n := range 20 {
			for at := 0; at <= n; at++ {
				s := strings.Repeat("a", at) + special + strings.Repeat("b", n-at)
				for _, payload := range []string{
					`{"software_statement":"` + s + `","iss":"sw","jti":"j1"}`,
					`{"iss":"` + s + `","jti":"j1"}`,
					`{"iss":"sw","jti":"` + s + `"}`,
					`{"` + s + `":"x","iss":"sw","jti":"j1"}`,
					`{"iss":"sw","jti":"j1","nested":["` + s + `",{"` + s + `":"` + s + `"}]}`,
				} {
					checkPeek(t, []byte(payload))
					// Stricter than checkPeek: a string encoding/json refuses (a control
					// character, a stray quote) gives no key either, as the byte-by-byte
					// scan before this one gave none.
					if _, _, ok := PeekReplayKey(peekBody([]byte(payload))); ok && !json.Valid([]byte(payload)) {
						t.Fatalf("%q: a key from a payload that is not JSON", payload)
					}
				}
			}
		}
	}
}

// TestPeekKeyOutlivesBuffer: the key and jti PeekReplayKey returns are its own, not views of
// the pooled decode buffer the next call overwrites.
func TestPeekKeyOutlivesBuffer(t *testing.T) {
	body := func(iss, jti string) []byte {
		return []byte("eyJhbGciOiJQUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+iss+`","jti":"`+jti+`"}`)) + ".c2ln")
	}
	key, jti, ok := PeekReplayKey(body("issuer-one", "jti-one"))
	if !ok {
		t.Fatal("no key")
	}
	for range 10 {
		PeekReplayKey(body("ISSUER-TWO", "JTI-TWO"))
	}
	if key != ReplayKey("issuer-one", "jti-one") || jti != "jti-one" {
		t.Fatalf("key %q jti %q changed after later calls", key, jti)
	}
}

// peekBody is a compact JWS with the given payload.
func peekBody(payload []byte) []byte {
	return []byte("eyJhbGciOiJQUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2ln")
}

// TestReplayRejectionAsBadMetadata: the replay answer, built without fmt, is the one
// dcr.BadMetadata's %q made, for any jti (quotes, escapes, % signs, non-ASCII, invalid UTF-8).
func TestReplayRejectionAsBadMetadata(t *testing.T) {
	for _, jti := range []string{"j1", `a"b`, `a\b`, "100%s%d%%", "é東京", "a\xffb", "\x00\n\t", "`x`", strings.Repeat("z", 300)} {
		got, want := ReplayRejection(jti), dcr.BadMetadata("jti %q has already been used", jti)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %+v, want %+v", jti, got, want)
		}
	}
}

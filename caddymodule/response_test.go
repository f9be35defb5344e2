package caddymodule

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/jsonenc/jsonenctest"
)

// TestWriteJSONMatchesEncodingJSON: writeJSON writes what json.NewEncoder(w).Encode wrote
// before it, byte for byte: a registration response of the pipeline, and values that take
// every path of its own walk and of the hand-off to encoding/json (escapes, HTML characters,
// invalid UTF-8, U+2028, nil maps and slices, numbers, nested values, a Marshaler, a cycle).
func TestWriteJSONMatchesEncodingJSON(t *testing.T) {
	p := newInProcess(t)
	w := p.do(http.MethodPost, "/register", p.signedRequest(t, nil), "")
	if w.Code != http.StatusCreated {
		t.Fatalf("register: %d %s", w.Code, w.Body)
	}
	var registered map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &registered); err != nil {
		t.Fatal(err)
	}
	nested := map[string]any{}
	deep := nested
	for range 100 {
		next := map[string]any{"v": "x"}
		deep["next"] = []any{next}
		deep = next
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	for name, body := range map[string]map[string]any{
		"registration response": registered,
		"strings": {"plain": "abc", "html": "<a href=\"x\">&</a>", "escapes": "a\\b\"c\n\t\r\b\f\x01\x1f\x7f",
			"unicode": "é ü 東京 \u2028 \u2029", "invalid": "a\xffb\xc3", "empty": "", "<key>&": "v",
			"amp": "a&b", "lt": "a<b", "gt": "a>b", "quote": `a"b`, "backslash": `a\b`, "del": "a\x7fb", "nl": "a\nb", "tab": "a\tb",
			"space": " ", "unit separator": "a\x1fb", "printable": " !#$%'()*+,-./09:;=?@AZ[]^_`az{|}~"},
		"scalars": {"int64": int64(-1234567890123), "int": 42, "float": 1.5e-7, "big": 1e21, "number": json.Number("12.50"),
			"true": true, "false": false, "null": nil, "time": time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)},
		"containers": {"nil map": map[string]any(nil), "empty map": map[string]any{}, "nil slice": []any(nil),
			"empty slice": []any{}, "strings": []string{"a", "<b>"}, "mixed": []any{"a", int64(1), 2.5, nil, map[string]any{"z": 1, "a": []any{}}},
			"raw": json.RawMessage(`{"b": 1, "a" : "<"}`)},
		"deep":  nested,
		"cycle": cyclic,
	} {
		var want bytes.Buffer
		_ = json.NewEncoder(&want).Encode(body)
		rec := httptest.NewRecorder()
		writeJSON(rec, http.StatusCreated, body)
		if got := rec.Body.String(); got != want.String() {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want.String())
		}
		if rec.Code != http.StatusCreated || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: status %d, headers %v", name, rec.Code, rec.Header())
		}
	}
}

// BenchmarkWriteJSON is writeJSON against the json.NewEncoder(w).Encode it replaced, on a
// registration response of the pipeline, in one run:
//
//	go test -run '^$' -bench WriteJSON -benchmem ./caddymodule/
func BenchmarkWriteJSON(b *testing.B) {
	p := newInProcess(b)
	w := p.do(http.MethodPost, "/register", p.signedRequest(b, nil), "")
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	b.Run("writeJSON", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			rec.Body.Reset()
			writeJSON(rec, http.StatusCreated, body)
		}
	})
	b.Run("EncodingJSON", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			rec.Body.Reset()
			_ = json.NewEncoder(rec).Encode(body)
		}
	})
}

// TestWriteJSONStringsAtEveryOffset: internal/jsonenc reads plain strings eight bytes at a
// time; a character encoding/json escapes or replaces, at any offset of a longer string, is
// still escaped or replaced as it does.
// TestWriteJSONRandomBodies compares writeJSON with json.NewEncoder(w).Encode on random
// bodies: odd strings and keys, floats of both formats, json.Numbers, nested maps and slices.
func TestWriteJSONRandomBodies(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 2000 {
		body := map[string]any{}
		for range r.IntN(10) {
			body[jsonenctest.RandomString(r)] = jsonenctest.RandomValue(r, 3)
		}
		var want bytes.Buffer
		_ = json.NewEncoder(&want).Encode(body)
		rec := httptest.NewRecorder()
		writeJSON(rec, http.StatusOK, body)
		if got := rec.Body.String(); got != want.String() {
			t.Fatalf("body %d:\n got %q\nwant %q", i, got, want.String())
		}
	}
}

func TestWriteJSONStringsAtEveryOffset(t *testing.T) {
	for _, special := range []string{`"`, `\`, "<", ">", "&", "\x00", "\x1f", "\x7f", "\x80", "\xff", "é", "\u2028", " ", "~"} {
		for n := range 20 {
			for at := 0; at <= n; at++ {
				s := strings.Repeat("a", at) + special + strings.Repeat("b", n-at)
				body := map[string]any{"v": s, s: "k"}
				var want bytes.Buffer
				_ = json.NewEncoder(&want).Encode(body)
				rec := httptest.NewRecorder()
				writeJSON(rec, http.StatusOK, body)
				if got := rec.Body.String(); got != want.String() {
					t.Fatalf("%q:\n got %q\nwant %q", s, got, want.String())
				}
			}
		}
	}
}

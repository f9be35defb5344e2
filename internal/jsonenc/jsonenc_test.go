package jsonenc

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/jsonenc/jsonenctest"
)

// sameAsMarshal fails t unless Append(prefix, v) is prefix followed by json.Marshal(v)'s
// bytes, or both refuse v.
func sameAsMarshal(t testing.TB, name string, v any) {
	t.Helper()
	want, wantErr := json.Marshal(v)
	prefix := []byte("prefix:")
	got, err := Append(bytes.Clone(prefix), v)
	switch {
	case (err != nil) != (wantErr != nil):
		t.Fatalf("%s: Append error %v, json.Marshal error %v", name, err, wantErr)
	case err != nil:
		return
	case !bytes.HasPrefix(got, prefix) || !bytes.Equal(got[len(prefix):], want):
		t.Fatalf("%s:\n got %q\nwant %q", name, got, append(prefix, want...))
	}
}

// manyNames has more keys than appendStringsMap sorts on its stack.
var manyNames = func() map[string][]string {
	m := map[string][]string{}
	for i := range 40 {
		m[string(rune('A'+i))] = []string{string(rune('z' - i%26))}
	}
	return m
}()

func TestAppendMatchesMarshal(t *testing.T) {
	for _, s := range jsonenctest.OddStrings {
		sameAsMarshal(t, "string "+s, s)
		sameAsMarshal(t, "key "+s, map[string]any{s: s, "a": 1})
	}
	for c := range 256 {
		sameAsMarshal(t, "byte", string([]byte{'a', byte(c), 'b'}))
	}
	for _, f := range jsonenctest.OddFloats {
		sameAsMarshal(t, "float", f)
		sameAsMarshal(t, "float in a slice", []any{f})
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	deep := map[string]any{}
	d := deep
	for range 100 {
		next := map[string]any{"v": "<x>"}
		d["next"] = []any{next, 1.5}
		d = next
	}
	for name, v := range map[string]any{
		"nil":          nil,
		"bools":        []any{true, false},
		"ints":         []any{int64(math.MinInt64), int64(math.MaxInt64), 0, -42, int64(7)},
		"numbers":      []any{json.Number("12.50"), json.Number("-0"), json.Number("1e+10"), json.Number("0.5E-3")},
		"empty number": json.Number(""),
		"bad number":   json.Number("01"),
		"bad number 2": json.Number("1e"),
		"nan in a map": map[string]any{"a": math.NaN()},
		"containers": map[string]any{"nil map": map[string]any(nil), "empty map": map[string]any{},
			"nil slice": []any(nil), "empty slice": []any{}, "strings": []string{"a", "<b>"},
			"nil strings": []string(nil), "nested": []any{[]any{map[string]any{"z": 1, "a": []any{}}}},
			"names": map[string][]string{"redirect_uris": {"a", "<b>"}, "b": nil, "a": {}}, "nil names": map[string][]string(nil),
			"many names": manyNames},
		"fallbacks": map[string]any{"time": time.Date(2026, 12, 2, 5, 0, 0, 1, time.FixedZone("x", 3600)),
			"raw": json.RawMessage(`{"b": 1, "a" : "<"}`), "float32": float32(1e-7), "uint8": uint8(3),
			"map of strings": map[string]string{"b": "1", "a": "<"}, "struct": struct{ A string }{"&"}},
		"deep":  deep,
		"cycle": cyclic,
	} {
		sameAsMarshal(t, name, v)
	}
}

func TestAppendTimeMatchesMarshal(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("", -(9*3600 + 30*60)), time.FixedZone("plus", 14*3600),
		time.FixedZone("odd", 5*3600+45*60+17), time.FixedZone("too far", 24*3600), time.FixedZone("far west", -25*3600)}
	for _, tt := range []time.Time{
		{}, time.Date(2026, 12, 2, 15, 4, 5, 0, time.UTC), time.Date(2026, 12, 2, 15, 4, 5, 123456789, time.UTC),
		time.Date(2026, 12, 2, 15, 4, 5, 120000000, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Now(),
	} {
		for _, z := range zones {
			tz := tt.In(z)
			want, wantErr := json.Marshal(tz)
			got, err := AppendTime([]byte("x"), tz)
			if (err != nil) != (wantErr != nil) || err == nil && string(got) != "x"+string(want) {
				t.Errorf("%v: got %q, %v; want x%q, %v", tz, got, err, want, wantErr)
			}
		}
	}
}

// TestAppendRandomValues compares Append with json.Marshal on random trees of the kinds a
// registration holds (and some it does not, which fall back).
func TestAppendRandomValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		sameAsMarshal(t, "random value", jsonenctest.RandomValue(r, 4))
		if t.Failed() {
			t.Fatalf("at %d", i)
		}
	}
}

// FuzzAppend compares Append with json.Marshal on any JSON document, decoded with float64
// numbers and with json.Numbers, and on the input itself as a string.
func FuzzAppend(f *testing.F) {
	f.Add(`{"a":[1,2.5e-7,"<x>",null,true,{"b":{}}],"\u2028":1e21}`)
	f.Add(`[-0,0.000001,1e-7,123456789012345678901234567890]`)
	f.Add("\"\xff\\u0000\"")
	for _, s := range jsonenctest.OddStrings {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		sameAsMarshal(t, "input as a string", doc)
		var v any
		if json.Unmarshal([]byte(doc), &v) == nil {
			sameAsMarshal(t, "decoded", v)
		}
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		if dec.Decode(&v) == nil {
			sameAsMarshal(t, "decoded with numbers", v)
		}
	})
}

// FuzzAppendFloat compares AppendFloat with json.Marshal on any finite float64.
func FuzzAppendFloat(f *testing.F) {
	for _, x := range jsonenctest.OddFloats {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		sameAsMarshal(t, "float", x)
	})
}

func BenchmarkAppend(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	v := map[string]any{}
	for range 20 {
		v[jsonenctest.RandomString(r)] = jsonenctest.RandomValue(r, 3)
	}
	var buf []byte
	b.Run("Append", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			buf, _ = Append(buf[:0], v)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			buf, _ = json.Marshal(v)
		}
	})
}

func BenchmarkAppendString(b *testing.B) {
	s := strings.Repeat("eyJhbGciOiJQUzI1NiIsImtpZCI6InJ3Z09YN0ZMX1pVWlJ4TnlDYVhLSlB0UWNFZzZZ", 30)
	buf := make([]byte, 0, 4096)
	b.SetBytes(int64(len(s)))
	for range b.N {
		buf = AppendString(buf[:0], s)
	}
}

// TestAppendStringsAtEveryOffset: AppendString skips eight plain bytes at a time; a byte
// that needs a look, at any offset of a longer string, still gets it.
func TestAppendStringsAtEveryOffset(t *testing.T) {
	for _, special := range []string{`"`, `\`, "<", ">", "&", "\x00", "\x1f", "\x7f", "\x80", "\xff", "é", "\u2028", "\u2029", " ", "~"} {
		for n := range 20 {
			for at := 0; at <= n; at++ {
				s := strings.Repeat("a", at) + special + strings.Repeat("b", n-at)
				sameAsMarshal(t, "string", s)
			}
		}
	}
}

// BenchmarkAppendResponse is Append against json.Marshal on a 201 body of the pipeline
// (testdata/registration_response.json, decoded with json.Numbers as the SSA claims are):
//
//	go test -run '^$' -bench AppendResponse -benchmem ./internal/jsonenc/
func BenchmarkAppendResponse(b *testing.B) {
	data, err := os.ReadFile("testdata/registration_response.json")
	if err != nil {
		b.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var body map[string]any
	if err := dec.Decode(&body); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 2*len(data))
	b.Run("Append", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			buf = appendOnce(buf[:0], body)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			marshalOnce(body)
		}
	})
}

// appendOnce and marshalOnce are one encoding each, not inlined, for an instruction count:
//
//	valgrind --tool=callgrind --toggle-collect='*jsonenc.appendOnce' ./jsonenc.test -test.bench 'AppendResponse/Append$' ...
//
//go:noinline
func appendOnce(b []byte, v any) []byte {
	b, _ = Append(b, v)
	return b
}

//go:noinline
func marshalOnce(v any) {
	_, _ = json.Marshal(v)
}

// Package jsonenctest generates the values the jsonenc equality tests compare with
// encoding/json: odd strings, floats at the edges of both formats, nested maps and slices.
package jsonenctest

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// OddStrings take every branch of jsonenc.AppendString: escapes, HTML characters, DEL, unicode,
// U+2028/9, invalid and truncated UTF-8.
var OddStrings = []string{
	"", "plain", " !#$%'()*+,-./09:;=?@AZ[]^_`az{|}~", `a"b`, `a\b`, "a\nb\tc\rd\be\ff",
	"\x00\x01\x1f\x7f", "<script>&amp;</script>", "é ü 東京 🎉", "\u2028\u2029", "x\u2028y\u2029z",
	"a\xffb", "\xc3", "\xe2\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\U0010ffff", "\ufffd",
	strings.Repeat("long safe ascii ", 50), strings.Repeat("<&>", 20),
}

// OddFloats take both formats of jsonenc.AppendFloat and its exponent clean-up at their edges.
var OddFloats = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 1.5e-7, 1e-6, 9.999999e-7, 1e-7, 1e-9, 1e-10, 5e-324,
	1e20, 1e21, 9.999999999999999e20, 1.2345e21, 1e100, -1e-300, math.MaxFloat64,
	math.SmallestNonzeroFloat64, 123456789012345678, 3.141592653589793, 300, -0.000001,
	math.NaN(), math.Inf(1), math.Inf(-1),
}

// RandomValue is a random JSON-ish value nested up to depth levels: odd strings and keys,
// floats from the edges of both formats, ints, json.Numbers, nil and empty containers.
func RandomValue(r *rand.Rand, depth int) any {
	n := 12
	if depth > 0 {
		n = 16
	}
	switch r.IntN(n) {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return OddFloats[r.IntN(len(OddFloats)-3)] // finite
	case 3:
		return (r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(60)-30))
	case 4:
		return r.Int64() >> r.IntN(64)
	case 5:
		return json.Number(numberText(r))
	case 6, 7:
		return RandomString(r)
	case 8:
		return float64(r.IntN(2000) - 1000)
	case 9:
		return []string{RandomString(r), RandomString(r)}
	case 10:
		return time.Unix(r.Int64N(1<<35), r.Int64N(1e9)).In(time.FixedZone("", (r.IntN(48)-24)*1800))
	case 11:
		return []string(nil)
	case 12, 13:
		if r.IntN(8) == 0 {
			return map[string]any(nil)
		}
		m := map[string]any{}
		for range r.IntN(6) {
			m[RandomString(r)] = RandomValue(r, depth-1)
		}
		return m
	default:
		if r.IntN(8) == 0 {
			return []any(nil)
		}
		s := make([]any, r.IntN(5))
		for i := range s {
			s[i] = RandomValue(r, depth-1)
		}
		return s
	}
}

// numberText is the text of a json.Number: a float as encoding/json writes it, a form it
// does not write (an exponent sign, trailing zeros), an empty one or an invalid one.
func numberText(r *rand.Rand) string {
	forms := []string{"1E+2", "-0.50", "0e0", "12345678901234567890123", "", "007", "1.", "+1", "0x10"}
	if r.IntN(3) == 0 {
		return forms[r.IntN(len(forms))]
	}
	b, _ := json.Marshal(OddFloats[r.IntN(len(OddFloats)-3)] * float64(r.IntN(100)))
	return string(b) // empty when the product overflowed
}

// RandomString is one of OddStrings, or a random mix of their bytes and random bytes.
func RandomString(r *rand.Rand) string {
	if r.IntN(2) == 0 {
		return OddStrings[r.IntN(len(OddStrings))]
	}
	var b []byte
	for range r.IntN(12) {
		if r.IntN(3) == 0 {
			b = append(b, byte(r.IntN(256)))
		} else {
			b = append(b, OddStrings[r.IntN(len(OddStrings))]...)
		}
	}
	return string(b)
}

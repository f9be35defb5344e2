// Package jsonenc appends JSON exactly as encoding/json's Marshal writes it (map keys sorted
// byte-wise, HTML characters, U+2028/U+2029 and invalid UTF-8 escaped, its float format),
// for the values a registration is made of: string, bool, float64, int64, int, json.Number,
// nil, map[string]any, []any and []string, nested. Marshal's reflection over a map of
// interfaces, and its sorting of reflected keys, cost a registration more CPU than the record
// and the response need. A value of any other type, a nesting deeper than maxDepth, or a value
// Marshal refuses (NaN, an invalid json.Number) is handed to encoding/json itself, so the
// bytes and the errors are its own.
package jsonenc

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxDepth is how deep Append walks nested maps and slices itself; below it they go to
// encoding/json, which refuses a cycle (an error, where the walk would recurse for ever).
const maxDepth = 64

// Append appends json.Marshal(v) to b.
func Append(b []byte, v any) ([]byte, error) {
	return appendValue(b, v, 0)
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth >= maxDepth {
		return marshaled(b, v)
	}
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return AppendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return marshaled(b, v)
		}
		return AppendFloat(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case json.Number:
		if !isValidNumber(string(v)) {
			return marshaled(b, v) // "" is 0 there; anything else its error
		}
		return append(b, v...), nil
	case map[string]any:
		return appendObject(b, v, depth+1)
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, el := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, el, depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case []string:
		return AppendStrings(b, v), nil
	case map[string][]string:
		return appendStringsMap(b, v), nil
	}
	return marshaled(b, v)
}

// marshaled appends encoding/json's own encoding of v.
func marshaled(b []byte, v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, data...), nil
}

// appendObject appends m with its members in key order (encoding/json sorts the keys of a
// map[string]any as strings, byte-wise).
func appendObject(b []byte, m map[string]any, depth int) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	var small [32]string
	b = append(b, '{')
	for i, k := range sortedKeys(m, small[:0]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, m[k], depth); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendStringsMap appends m as json.Marshal writes a map[string][]string.
func appendStringsMap(b []byte, m map[string][]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var small [32]string
	b = append(b, '{')
	for i, k := range sortedKeys(m, small[:0]) {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, k)
		b = append(b, ':')
		b = AppendStrings(b, m[k])
	}
	return append(b, '}')
}

// sortedKeys returns m's keys in byte-wise order, in buf when they fit.
func sortedKeys[V any](m map[string]V, buf []string) []string {
	keys := buf[:0]
	if len(m) > cap(buf) {
		keys = make([]string, 0, len(m))
	}
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// AppendStrings appends s as json.Marshal writes a []string (null for nil).
func AppendStrings(b []byte, s []string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, el := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, el)
	}
	return append(b, ']')
}

// AppendFloat appends f as encoding/json writes a float64 (ES6 number formatting: %f-like
// between 1e-6 and 1e21, else an exponent without padding). f must be finite.
func AppendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9, as encoding/json does.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// AppendTime appends t as encoding/json writes a time.Time (its MarshalJSON: RFC 3339 with
// nanoseconds, quoted); a time MarshalJSON refuses (a year outside 0–9999) is its error.
func AppendTime(b []byte, t time.Time) ([]byte, error) {
	text, err := t.AppendText(append(b, '"'))
	if err != nil {
		return marshaled(b, t) // AppendText returns no bytes with its error
	}
	return append(text, '"'), nil
}

const hex = "0123456789abcdef"

// AppendString appends s quoted as encoding/json writes a string with HTML escaping (its
// appendString): quote, backslash and control characters escaped, < > & as \u003c \u003e
// \u0026, U+2028 and U+2029 as \u2028 \u2029, and each byte of invalid UTF-8 as \ufffd.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Most strings (a software statement, a URL, an identifier) are plain ASCII: eight
		// bytes at a time while none needs a look.
		for len(s)-i >= 8 && !needsLook(load8(s[i:])) {
			i += 8
		}
		// The last few bytes: the string's last eight, when it has eight, read again.
		if len(s)-i < 8 && len(s) >= 8 && !needsLook(load8(s[len(s)-8:])) {
			i = len(s)
		}
		if i == len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// htmlSafe is encoding/json's htmlSafeSet: the ASCII bytes it writes as they are in an
// HTML-escaped string, printable ASCII and DEL but for " \ < > &.
var htmlSafe = func() (set [utf8.RuneSelf]bool) {
	for c := byte(0x20); c < utf8.RuneSelf; c++ {
		set[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return set
}()

// load8 is the first eight bytes of s, the first in the low byte (one load).
func load8(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// needsLook reports whether one of the eight bytes of x is not one AppendString writes as it
// is without a look: a byte equal to " \\ < > &, below 0x20, or with its high bit set. A byte
// of y is zero where x's is one of the characters (< and > differ in bit 1 only, " and & in
// bit 2), and (y - ones) &^ y has the high bit of a zero byte: each test is exact for the word
// as a whole.
func needsLook(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	angle := (x | ones*0x02) ^ (ones * '>')
	quoteAmp := (x | ones*0x04) ^ (ones * '&')
	backslash := x ^ (ones * '\\')
	zero := (angle-ones)&^angle | (quoteAmp-ones)&^quoteAmp | (backslash-ones)&^backslash
	return (zero|(x-ones*0x20)&^x|x)&highs != 0
}

// isValidNumber is encoding/json's check of a json.Number (the JSON number grammar, RFC 7159
// §6); an invalid one is left to it.
func isValidNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	default:
		return false
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}

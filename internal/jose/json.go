package jose

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting in header and payload. Real software statements nest two
// or three levels; the bound keeps hostile input from costing deep recursion.
const maxJSONDepth = 32

// maxObjectHint bounds the room the top object of a text is made with (a software statement
// has about 30 members).
const maxObjectHint = 64

// decodeObject decodes data, which must be exactly one JSON object, into a map.
//
// It is stricter than json.Unmarshal on purpose: encoding/json silently replaces invalid
// UTF-8 and keeps the last of duplicate member names, while other JOSE implementations
// may keep the first. A signed token whose meaning depends on the parser is refused
// instead (RFC 7515 §5.2 allows rejecting duplicates). Numbers are kept as json.Number.
//
// It is a single pass over data (a recursive-descent parser of RFC 8259): every request
// decodes three objects (the request's and the SSA's header and payload) before anything is
// verified, and encoding/json's Decoder.Token, which this replaced, cost a third of a
// registration's CPU. Strings with escapes are unquoted by encoding/json itself, so their
// meaning is the standard library's.
func decodeObject(data []byte) (map[string]any, error) {
	return decodeObjectText(data, string(data))
}

// decodeObjectText is decodeObject of data, whose bytes text holds too: the strings of the
// result without escapes are substrings of text, not copies of their own (one allocation per
// object instead of one per member name and per string).
func decodeObjectText(data []byte, text string) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	p := jsonParser{data: data, text: text}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return nil, fmt.Errorf("not a JSON object (starts with %s)", p.describe())
	}
	p.pos++
	// The top object is made with room for every member name of the text (nested ones too: a
	// hint), so that it is not grown two or three times on the way; at most maxObjectHint, so
	// that a text of quotes and colons in strings cannot make it allocate a huge map.
	obj, err := p.object(1, min(bytes.Count(data, []byte(`":`)), maxObjectHint))
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, errors.New("trailing data after the JSON object")
	}
	return obj, nil
}

type jsonParser struct {
	data []byte
	// text is data as a string, or "" for a parser that copies every string it returns.
	text string
	pos  int
}

// slice is data[i:j] as a string: a substring of text where it is set.
func (p *jsonParser) slice(i, j int) string {
	if len(p.text) == len(p.data) {
		return p.text[i:j]
	}
	return string(p.data[i:j])
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// describe names what starts at the current position, for an error.
func (p *jsonParser) describe() string {
	if p.pos >= len(p.data) {
		return "nothing"
	}
	switch c := p.data[p.pos]; {
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	default:
		return fmt.Sprintf("%q", rune(c))
	}
}

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("not JSON: "+format+" at offset %d", append(args, p.pos)...)
}

// object reads members after the opening '{' up to and including the closing '}', into a map
// made with room for hint members.
func (p *jsonParser) object(depth, hint int) (map[string]any, error) {
	obj := make(map[string]any, hint)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return obj, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("member name is %s", p.describe())
		}
		name, err := p.str()
		if err != nil {
			return nil, err
		}
		if _, dup := obj[name]; dup {
			return nil, fmt.Errorf("duplicate member %q", name)
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("no ':' after member name %q", name)
		}
		p.pos++
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		obj[name] = v
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unterminated object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return obj, nil
		default:
			return nil, p.errorf("unexpected %q in an object", rune(p.data[p.pos]))
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return nil, p.errorf("a value is missing")
	}
	switch c := p.data[p.pos]; {
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return nil, fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
		}
		p.pos++
		if c == '{' {
			return p.object(depth+1, 0)
		}
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return nil, p.errorf("unexpected %q", rune(c))
	}
}

// array reads the elements after the opening '[' up to and including the closing ']'.
func (p *jsonParser) array(depth int) ([]any, error) {
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return []any{}, nil
	}
	arr := make([]any, 0, 4) // the arrays of a token are short: one allocation, not three

	for {
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unterminated array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return arr, nil
		default:
			return nil, p.errorf("unexpected %q in an array", rune(p.data[p.pos]))
		}
	}
}

func (p *jsonParser) literal(word string) error {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return p.errorf("invalid literal")
	}
	p.pos += len(word)
	return nil
}

// str reads a string at the opening quote. One without escapes is taken as is (data is
// valid UTF-8); one with escapes is unquoted by encoding/json.
func (p *jsonParser) str() (string, error) {
	start := p.pos
	p.pos++
	escaped := false
	for p.pos < len(p.data) {
		p.pos = SkipPlainString(p.data, p.pos)
		if p.pos >= len(p.data) {
			break
		}
		switch c := p.data[p.pos]; {
		case c == '"':
			p.pos++
			if !escaped {
				return p.slice(start+1, p.pos-1), nil
			}
			var s string
			if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
				return "", p.errorf("invalid string: %v", err)
			}
			return s, nil
		case c == '\\':
			escaped = true
			p.pos += 2 // the escape's next byte is never the closing quote
		case c < 0x20:
			return "", p.errorf("control character in a string")
		default:
			p.pos++
		}
	}
	return "", p.errorf("unterminated string")
}

// number reads an RFC 8259 number as a json.Number.
func (p *jsonParser) number() (json.Number, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case digits() == 0:
		return "", p.errorf("invalid number")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return "", p.errorf("invalid number")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return "", p.errorf("invalid number")
		}
	}
	return json.Number(p.slice(start, p.pos)), nil
}

// SkipPlainString returns the index of the first byte of b at or after i that may end or
// change a JSON string (a quote, a backslash or a control character), or a later index from
// which the caller goes on byte by byte: it reads eight bytes at a time while none of them is
// one (the long strings of a request, its software statement above all, have none), and
// stops at the word that holds one or in the last seven bytes of b.
func SkipPlainString(b []byte, i int) int {
	for i+8 <= len(b) && !hasStringSpecial(binary.LittleEndian.Uint64(b[i:])) {
		i += 8
	}
	return i
}

// hasStringSpecial reports whether one of the eight bytes of x is a quote, a backslash or a
// control character (< 0x20): the classic "has a zero byte" and "has a byte less than n"
// word tests, exact for the word as a whole (a borrow can mark a wrong byte only above a real
// one, and the caller reads the word byte by byte once it is marked).
func hasStringSpecial(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	return ((quote-ones)&^quote|(backslash-ones)&^backslash|(x-ones*0x20)&^x)&highs != 0
}

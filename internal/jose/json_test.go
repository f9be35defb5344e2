package jose

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// stdDecode is what encoding/json makes of data (numbers as json.Number), for objects
// without duplicate members: decodeObject must agree with it on every object it accepts.
func stdDecode(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, json.Unmarshal([]byte("x"), &m)
	}
	return m, nil
}

var jsonCorpus = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":-0.5e+10,"b":[1,2,{"c":null}],"d":true,"e":false}`,
	`{"s":"plain","t":"tab\tescaped \" \\ \/ \u00e9 \ud83d\ude00","u":"é😀"}`,
	`{"n":12345678901234567890,"z":0,"f":1.0E-3}`, `{"nested":{"a":{"b":{"c":[[],[{}]]}}}}`,
	"{\n\t\"a\" :\r\n [ 1 , 2 ] \n}",
}

var jsonBad = []string{
	``, `[]`, `"s"`, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{a:1}`, `{"a":01}`,
	`{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`, `{"a":tru}`, `{"a":nul}`, `{"a":"\x"}`,
	`{"a":"\u12"}`, "{\"a\":\"ctl\x01\"}", `{"a":"unterminated}`, `{"a":[1,]}`, `{"a":[1 2]}`,
	`{} x`, `{}{}`, `{"a":1,"a":2}`, `{"o":{"k":1,"k":1}}`,
	strings.Repeat(`{"a":`, maxJSONDepth+1) + `1` + strings.Repeat(`}`, maxJSONDepth+1),
}

func TestDecodeObjectAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range jsonCorpus {
		got, err := decodeObject([]byte(in))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		want, err := stdDecode([]byte(in))
		if err != nil {
			t.Fatalf("corpus entry %q is not JSON: %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got %#v\nwant %#v", in, got, want)
		}
	}
	for _, in := range jsonBad {
		if got, err := decodeObject([]byte(in)); err == nil {
			t.Errorf("%q accepted as %v", in, got)
		}
	}
}

func FuzzDecodeObject(f *testing.F) {
	for _, in := range append(jsonCorpus, jsonBad...) {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeObject(data)
		if err != nil {
			return
		}
		want, serr := stdDecode(data)
		if serr != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", data, serr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
		}
	})
}

// strByteByByte is jsonParser.str as it was before SkipPlainString, byte by byte: what the
// word-at-a-time scan must agree with (the string, the position after it, the error).
func strByteByByte(p *jsonParser) (string, error) {
	start := p.pos
	p.pos++
	escaped := false
	for p.pos < len(p.data) {
		switch c := p.data[p.pos]; {
		case c == '"':
			p.pos++
			if !escaped {
				return string(p.data[start+1 : p.pos-1]), nil
			}
			var s string
			if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
				return "", p.errorf("invalid string: %v", err)
			}
			return s, nil
		case c == '\\':
			escaped = true
			p.pos += 2
		case c < 0x20:
			return "", p.errorf("control character in a string")
		default:
			p.pos++
		}
	}
	return "", p.errorf("unterminated string")
}

// TestStrAtEveryOffset: a quote, an escape, a control character, non-ASCII or invalid UTF-8
// at any offset of a string, and strings cut short anywhere, read as the byte-by-byte scan
// read them.
func TestStrAtEveryOffset(t *testing.T) {
	for _, special := range []string{`"`, `\"`, `\\`, `\u00e9`, `\`, "\x00", "\x01", "\x1f", "\x7f", "\xff", "é", " "} {
		for n := range 20 {
			for at := 0; at <= n; at++ {
				s := `"` + strings.Repeat("a", at) + special + strings.Repeat("b", n-at) + `"tail`
				for cut := 1; cut <= len(s); cut++ {
					data := []byte(s[:cut])
					got, want := &jsonParser{data: data}, &jsonParser{data: data}
					gs, gerr := got.str()
					ws, werr := strByteByByte(want)
					if gs != ws || (gerr == nil) != (werr == nil) || got.pos != want.pos || (gerr != nil && gerr.Error() != werr.Error()) {
						t.Fatalf("%q: got %q, %v at %d; want %q, %v at %d", data, gs, gerr, got.pos, ws, werr, want.pos)
					}
				}
			}
		}
	}
}

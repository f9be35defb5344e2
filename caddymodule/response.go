package caddymodule

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obresponse"
)

// registrationResponse is the OB DCR v3.2 answer for a stored registration; the shape is
// dcr/obresponse's (metadata, flattened SSA claims, the names the client sent, the
// server-assigned attributes).
func registrationResponse(rec *dcr.Registration, creds map[string]any, endpointURL string) map[string]any {
	return obresponse.Build(rec, creds, endpointURL)
}

// writeJSON writes body as json.NewEncoder(w).Encode writes it (the same bytes: members in
// key order, HTML characters escaped, a final newline, one Write), but walks the maps, slices
// and plain strings of a registration response itself: encoding/json's reflection over a map
// of interfaces and its sorting of reflected keys were a tenth of a registration's handler
// CPU outside the cryptography and the store. Any other value is given to encoding/json.
func writeJSON(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Cache-Control", "no-store")
	if body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	buf := responseBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	e := responseEncoder{buf: buf}
	if e.object(body) == nil {
		buf.WriteByte('\n')
		_, _ = w.Write(buf.Bytes())
	}
	// As before, a body encoding/json cannot encode writes nothing.
	if buf.Cap() <= maxPooledResponse {
		responseBuffers.Put(buf)
	}
}

// maxPooledResponse is the largest response buffer kept for reuse.
const maxPooledResponse = 64 << 10

var responseBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// responseEncoder appends JSON to buf; values it does not walk itself go through enc,
// encoding/json's own encoder on the same buffer (made on first use).
type responseEncoder struct {
	buf   *bytes.Buffer
	enc   *json.Encoder
	depth int
}

// maxWalkedDepth is how deep the encoder walks nested maps and slices itself; below it they
// are given to encoding/json, which refuses a cycle (an error, where the walk would recurse
// for ever) and encodes anything else to the same bytes.
const maxWalkedDepth = 64

func (e *responseEncoder) value(v any) error {
	if e.depth >= maxWalkedDepth {
		return e.encoded(v)
	}
	switch v := v.(type) {
	case string:
		return e.string(v)
	case map[string]any:
		return e.object(v)
	case []any:
		if v == nil {
			e.buf.WriteString("null")
			return nil
		}
		e.depth++
		defer func() { e.depth-- }()
		e.buf.WriteByte('[')
		for i, el := range v {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			if err := e.value(el); err != nil {
				return err
			}
		}
		e.buf.WriteByte(']')
		return nil
	case bool:
		e.buf.WriteString(strconv.FormatBool(v))
		return nil
	case int64:
		e.buf.Write(strconv.AppendInt(e.buf.AvailableBuffer(), v, 10))
		return nil
	}
	return e.encoded(v)
}

// string writes s as encoding/json does: as it is between quotes when it has nothing to
// escape (a software statement, a URL, an identifier), else by encoding/json.
func (e *responseEncoder) string(s string) error {
	if !htmlSafeASCII(s) {
		return e.encoded(s)
	}
	e.buf.WriteByte('"')
	e.buf.WriteString(s)
	e.buf.WriteByte('"')
	return nil
}

// encoded appends encoding/json's encoding of v (without the newline Encode adds).
func (e *responseEncoder) encoded(v any) error {
	if e.enc == nil {
		e.enc = json.NewEncoder(e.buf)
	}
	if err := e.enc.Encode(v); err != nil {
		return err
	}
	e.buf.Truncate(e.buf.Len() - 1)
	return nil
}

// object writes m with its members in key order, as encoding/json sorts the keys of a
// map[string]any (byte-wise), the keys encoded as strings are.
func (e *responseEncoder) object(m map[string]any) error {
	if m == nil {
		e.buf.WriteString("null")
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.depth++
	defer func() { e.depth-- }()
	e.buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			e.buf.WriteByte(',')
		}
		if err := e.string(k); err != nil {
			return err
		}
		e.buf.WriteByte(':')
		if err := e.value(m[k]); err != nil {
			return err
		}
	}
	e.buf.WriteByte('}')
	return nil
}

// htmlSafeASCII reports whether encoding/json writes s unchanged between its quotes: printable
// ASCII without the characters it escapes (a quote, a backslash, and < > & as HTML-safe
// encoding does). Anything else (a control character, DEL, non-ASCII, invalid UTF-8) is left
// to it. A long string (a software statement) is read eight bytes at a time.
func htmlSafeASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if hasHTMLUnsafe(x) {
			return false
		}
	}
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// hasHTMLUnsafe reports whether one of the eight bytes of x is one htmlSafeASCII refuses: the
// word tests for a byte equal to one of the five characters, below 0x20, equal to DEL, or
// with its high bit set (each exact for the word as a whole).
func hasHTMLUnsafe(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	eq := func(c uint64) uint64 {
		y := x ^ (ones * c)
		return (y - ones) &^ y
	}
	return (eq('"')|eq('\\')|eq('<')|eq('>')|eq('&')|eq(0x7f)|(x-ones*0x20)&^x|x)&highs != 0
}

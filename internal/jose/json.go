package jose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// maxJSONDepth bounds nesting in header and payload. Real software statements nest two
// or three levels; the bound keeps hostile input from costing deep recursion.
const maxJSONDepth = 32

// decodeObject decodes data, which must be exactly one JSON object, into a map.
//
// It is stricter than json.Unmarshal on purpose: encoding/json silently replaces invalid
// UTF-8 and keeps the last of duplicate member names, while other JOSE implementations
// may keep the first. A signed token whose meaning depends on the parser is refused
// instead (RFC 7515 §5.2 allows rejecting duplicates). Numbers are kept as json.Number.
func decodeObject(data []byte) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object (starts with %s)", describeToken(tok))
	}
	obj, err := readObject(dec, 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	return obj, nil
}

// readObject reads members after the opening '{' up to and including the closing '}'.
func readObject(dec *json.Decoder, depth int) (map[string]any, error) {
	obj := make(map[string]any)
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return obj, nil
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("not JSON: member name is %s", describeToken(tok))
		}
		if _, dup := obj[name]; dup {
			return nil, fmt.Errorf("duplicate member %q", name)
		}
		v, err := readValue(dec, depth)
		if err != nil {
			return nil, err
		}
		obj[name] = v
	}
}

func readValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	if depth >= maxJSONDepth {
		return nil, fmt.Errorf("JSON nested deeper than %d levels", maxJSONDepth)
	}
	switch d {
	case '{':
		return readObject(dec, depth+1)
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := readValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.Token(); err != nil { // the closing ']'
			return nil, fmt.Errorf("not JSON: %v", err)
		}
		return arr, nil
	default:
		return nil, fmt.Errorf("not JSON: unexpected %q", rune(d))
	}
}

func describeToken(tok any) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return fmt.Sprintf("%q", rune(t))
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%T", tok)
	}
}

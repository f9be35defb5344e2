package tppclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// ApplyOverrides edits claims from "--claim" arguments:
//
//	name=value  value is used as JSON if it parses (numbers, arrays, objects, true, false,
//	            null, "quoted strings"), else as the literal string
//	name=       the empty string
//	-name       removes the claim
//
// JSON integers become int64 and other numbers float64, so large timestamps keep every digit.
func ApplyOverrides(claims map[string]any, kv []string) error {
	for _, item := range kv {
		name, value, hasValue := strings.Cut(item, "=")
		if !hasValue {
			if strings.HasPrefix(item, "-") && len(item) > 1 {
				delete(claims, item[1:])
				continue
			}
			return fmt.Errorf("claim override %q: want name=value or -name", item)
		}
		if name == "" {
			return fmt.Errorf("claim override %q: empty name", item)
		}
		claims[name] = ParseValue(value)
	}
	return nil
}

// ParseValue is the value rule of ApplyOverrides.
func ParseValue(s string) any {
	if s == "" {
		return ""
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return s
	}
	// Trailing input ("1 2", "123abc") means it was not one JSON value.
	if !onlySpaceAfter(s, dec.InputOffset()) {
		return s
	}
	return normalizeNumbers(v)
}

func onlySpaceAfter(s string, off int64) bool {
	return len(bytes.TrimSpace([]byte(s[off:]))) == 0
}

func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x
	case []any:
		for i := range x {
			x[i] = normalizeNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normalizeNumbers(x[k])
		}
	}
	return v
}

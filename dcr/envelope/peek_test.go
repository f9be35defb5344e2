package envelope

import (
	"encoding/base64"
	"encoding/json"
	"testing"
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
	body := []byte("eyJhbGciOiJQUzI1NiJ9." + base64.RawURLEncoding.EncodeToString(payload) + ".c2ln")
	key, jti, ok := PeekReplayKey(body)
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

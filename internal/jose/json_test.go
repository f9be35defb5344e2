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

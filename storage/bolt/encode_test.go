package bolt

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/storetest"
	"github.com/dcrgate/dcrgate/internal/jsonenc/jsonenctest"
)

// TestRecordFieldsAreEncoded fails when a field is added to dcr.Registration, dcr.RegisteredKey,
// dcr.RevokedKeySet or dcr.HistoryEvent, or a json tag changes: appendRecord and appendEvent
// write the members listed here, and would drop a new one (an omitempty field the equality
// tests leave zero) without a word.
func TestRecordFieldsAreEncoded(t *testing.T) {
	for typ, want := range map[reflect.Type]string{
		reflect.TypeFor[dcr.Registration](): "client_id version software_id org_id metadata metadata_names,omitempty " +
			"software_statement ssa_claims directory,omitempty registration_token_hash client_secret_hash,omitempty " +
			"cert_subject,omitempty cert_thumbprint,omitempty signing_key,omitempty backend,omitempty issued_at updated_at deleted_at,omitempty",
		reflect.TypeFor[dcr.RegisteredKey](): "kid thumbprint,omitempty revoked_key_sets,omitempty",
		reflect.TypeFor[dcr.RevokedKeySet](): "claim url",
		reflect.TypeFor[dcr.HistoryEvent]():  "time event operation,omitempty client_id,omitempty software_id,omitempty org_id,omitempty status,omitempty error,omitempty reason,omitempty actor,omitempty",
	} {
		var tags []string
		for f := range typ.Fields() {
			tags = append(tags, f.Tag.Get("json"))
		}
		if got := strings.Join(tags, " "); got != want {
			t.Errorf("%v: json tags\n %s\nwant (the members appendRecord and appendEvent write)\n %s", typ, got, want)
		}
	}
}

// sameRecordBytes fails t unless encodeRecord(rec) is json.Marshal(rec), or both refuse it.
func sameRecordBytes(t testing.TB, name string, rec *dcr.Registration) {
	t.Helper()
	want, wantErr := json.Marshal(rec)
	got, err := encodeRecord(rec)
	switch {
	case (err != nil) != (wantErr != nil):
		t.Fatalf("%s: encodeRecord error %v, json.Marshal error %v", name, err, wantErr)
	case err == nil && !bytes.Equal(got, want):
		t.Fatalf("%s:\n got %s\nwant %s", name, got, want)
	}
}

func sameEventBytes(t testing.TB, name string, ev *dcr.HistoryEvent) {
	t.Helper()
	want, wantErr := json.Marshal(ev)
	got, err := encodeEvent(ev)
	switch {
	case (err != nil) != (wantErr != nil):
		t.Fatalf("%s: encodeEvent error %v, json.Marshal error %v", name, err, wantErr)
	case err == nil && !bytes.Equal(got, want):
		t.Fatalf("%s:\n got %s\nwant %s", name, got, want)
	}
}

// pipelineRecord is a record the POST pipeline stored (testdata/pipeline_record.json), its
// maps decoded as the pipeline holds them on Create (numbers as json.Number) or as a read
// of the store does (float64).
func pipelineRecord(t testing.TB, numbers bool) *dcr.Registration {
	data, err := os.ReadFile("testdata/pipeline_record.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if numbers {
		dec.UseNumber()
	}
	var rec dcr.Registration
	if err := dec.Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return &rec
}

func TestEncodeRecordMatchesMarshal(t *testing.T) {
	deleted := time.Date(2026, 12, 2, 16, 0, 0, 5, time.FixedZone("", -3*3600))
	tooLate := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, rec := range map[string]*dcr.Registration{
		"zero":                   {},
		"pipeline":               pipelineRecord(t, false),
		"pipeline, json.Numbers": pipelineRecord(t, true),
		"storetest":              storetest.NewRegistration(7),
		"tombstone": func() *dcr.Registration {
			r := storetest.NewRegistration(8)
			r.DeletedAt = &deleted
			return r
		}(),
		"empty maps and key": {Metadata: map[string]any{}, SSAClaims: map[string]any{}, Backend: map[string]any{},
			MetadataNames: map[string][]string{}, SigningKey: &dcr.RegisteredKey{RevokedKeySets: []dcr.RevokedKeySet{}}},
		"names": {MetadataNames: map[string][]string{"tls_client_auth_subject_dn": {"tls_client_auth_dn"},
			"b": nil, "a": {}, "<&>": {"\u2028", "x\xff"}}},
		"odd strings": {ClientID: "<client>&", SoftwareID: "\u2029", OrgID: "a\"b\\c", SoftwareStatement: "\x00\x7f",
			Directory: "é", RegistrationTokenHash: "\xc3", ClientSecretHash: "\n", CertSubject: "CN=a, O=<b>",
			CertThumbprint: "\t", SigningKey: &dcr.RegisteredKey{KeyID: "&", Thumbprint: "<",
				RevokedKeySets: []dcr.RevokedKeySet{{Claim: ">", URL: "https://x/?a=1&b=2"}, {}}}},
		"zoned times": {IssuedAt: time.Date(2025, 6, 1, 2, 3, 4, 999999999, time.FixedZone("CEST", 7200)),
			UpdatedAt: time.Date(1969, 12, 31, 23, 59, 59, 1000, time.FixedZone("", -(12*3600+45*60)))},
		"time out of range":    {IssuedAt: tooLate},
		"deleted out of range": {DeletedAt: &tooLate},
		"NaN in metadata":      {Metadata: map[string]any{"x": []any{1.0, jsonNaN()}}},
		"fallback values": {Backend: map[string]any{"time": deleted, "raw": json.RawMessage(`{"b":1, "a":2}`),
			"strings": map[string]string{"b": "<", "a": "&"}, "n": json.Number("1.50")}},
	} {
		sameRecordBytes(t, name, rec)
	}
}

func jsonNaN() float64 {
	var zero float64
	return zero / zero
}

// TestEncodeRecordRandom compares encodeRecord with json.Marshal on random records: every
// field set or left zero, odd strings, random nested map values, times in random zones.
func TestEncodeRecordRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 3000 {
		sameRecordBytes(t, "random record", randomRecord(r))
		sameEventBytes(t, "random event", randomEvent(r))
		if t.Failed() {
			t.Fatalf("at %d", i)
		}
	}
}

func TestEncodeEventMatchesMarshal(t *testing.T) {
	for name, ev := range map[string]*dcr.HistoryEvent{
		"zero":       {},
		"registered": {Time: time.Now(), Event: dcr.EventRegistered, Operation: "register", ClientID: "c", Status: 201},
		"rejected": {Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("", 3600)), Event: dcr.EventRejected,
			SoftwareID: "s<", OrgID: "o&", Status: -400, Error: "invalid_software_statement", Reason: "a \"reason\"\n\u2028", Actor: "op\xff"},
		"out of range": {Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		sameEventBytes(t, name, ev)
	}
}

func randomRecord(r *rand.Rand) *dcr.Registration {
	str := func() string {
		if r.IntN(3) == 0 {
			return ""
		}
		return jsonenctest.RandomString(r)
	}
	obj := func() map[string]any {
		switch r.IntN(4) {
		case 0:
			return nil
		case 1:
			return map[string]any{}
		}
		m := map[string]any{}
		for range r.IntN(12) {
			m[jsonenctest.RandomString(r)] = jsonenctest.RandomValue(r, 3)
		}
		return m
	}
	tm := func() time.Time {
		if r.IntN(5) == 0 {
			return time.Time{}
		}
		return time.Unix(r.Int64N(1<<34)-1<<32, r.Int64N(1e9)).In(time.FixedZone("", (r.IntN(56)-28)*900))
	}
	rec := &dcr.Registration{
		ClientID: str(), Version: r.Int64() >> r.IntN(64), SoftwareID: str(), OrgID: str(),
		Metadata: obj(), SoftwareStatement: str(), SSAClaims: obj(), Directory: str(),
		RegistrationTokenHash: str(), ClientSecretHash: str(), CertSubject: str(), CertThumbprint: str(),
		Backend: obj(), IssuedAt: tm(), UpdatedAt: tm(),
	}
	if r.IntN(2) == 0 {
		rec.Version = -rec.Version
	}
	if r.IntN(2) == 0 {
		rec.MetadataNames = map[string][]string{}
		for range r.IntN(4) {
			var sent []string
			for range r.IntN(3) {
				sent = append(sent, str())
			}
			rec.MetadataNames[str()] = sent
		}
	}
	if r.IntN(2) == 0 {
		rec.SigningKey = &dcr.RegisteredKey{KeyID: str(), Thumbprint: str()}
		for range r.IntN(3) {
			rec.SigningKey.RevokedKeySets = append(rec.SigningKey.RevokedKeySets, dcr.RevokedKeySet{Claim: str(), URL: str()})
		}
	}
	if r.IntN(3) == 0 {
		d := tm()
		rec.DeletedAt = &d
	}
	return rec
}

func randomEvent(r *rand.Rand) *dcr.HistoryEvent {
	str := func() string {
		if r.IntN(2) == 0 {
			return ""
		}
		return jsonenctest.RandomString(r)
	}
	return &dcr.HistoryEvent{
		Time:  time.Unix(r.Int64N(1<<34), r.Int64N(1e9)).In(time.FixedZone("", (r.IntN(48)-24)*1800)),
		Event: str(), Operation: str(), ClientID: str(), SoftwareID: str(), OrgID: str(),
		Status: r.IntN(3) * (r.IntN(1200) - 600), Error: str(), Reason: str(), Actor: str(),
	}
}

// FuzzEncodeRecord compares encodeRecord with json.Marshal on records whose strings and
// maps come from the fuzzer: its string as every string field, and as a JSON document decoded
// into the maps (float64 numbers in Metadata, json.Numbers in SSAClaims).
func FuzzEncodeRecord(f *testing.F) {
	data, err := os.ReadFile("testdata/pipeline_record.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data), int64(1), int64(1796226093390345423), 3600)
	f.Add(`{"a":[1e21,1e-7,"<\u2028>",{}],"b":null}`, int64(-1), int64(-1), -45*60)
	f.Add("\xff<&>", int64(0), int64(0), 0)
	f.Fuzz(func(t *testing.T, s string, version, nanos int64, offset int) {
		var metadata, claims map[string]any
		_ = json.Unmarshal([]byte(s), &metadata)
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		_ = dec.Decode(&claims)
		at := time.Unix(0, nanos).In(time.FixedZone("", offset%(30*3600)))
		rec := &dcr.Registration{ClientID: s, Version: version, SoftwareID: s, OrgID: s, Metadata: metadata,
			MetadataNames: map[string][]string{s: {s}}, SoftwareStatement: s, SSAClaims: claims, Directory: s,
			RegistrationTokenHash: s, ClientSecretHash: s, CertSubject: s, CertThumbprint: s,
			SigningKey: &dcr.RegisteredKey{KeyID: s, Thumbprint: s, RevokedKeySets: []dcr.RevokedKeySet{{Claim: s, URL: s}}},
			Backend:    claims, IssuedAt: at, UpdatedAt: at.Add(time.Duration(version)), DeletedAt: &at}
		sameRecordBytes(t, "fuzzed record", rec)
		sameEventBytes(t, "fuzzed event", &dcr.HistoryEvent{Time: at, Event: s, Operation: s, ClientID: s,
			SoftwareID: s, OrgID: s, Status: int(version), Error: s, Reason: s, Actor: s})
	})
}

// BenchmarkEncodeRecord is encodeRecord against the json.Marshal it replaced, on a record
// the pipeline stored, as Create holds it (json.Numbers from the SSA), in one run:
//
//	go test -run '^$' -bench EncodeRecord -benchmem ./storage/bolt/
//
// and in instructions, each encoding being one call of encodeOnce or marshalOnce:
//
//	valgrind --tool=callgrind --toggle-collect='*bolt.encodeOnce' ./bolt.test -test.run '^$' -test.bench 'EncodeRecord/encodeRecord$' -test.benchtime 2000x
func BenchmarkEncodeRecord(b *testing.B) {
	rec := pipelineRecord(b, true)
	b.Run("encodeRecord", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			encodeOnce(b, rec)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			marshalOnce(b, rec)
		}
	})
}

//go:noinline
func encodeOnce(b *testing.B, rec *dcr.Registration) {
	if _, err := encodeRecord(rec); err != nil {
		b.Fatal(err)
	}
}

//go:noinline
func marshalOnce(b *testing.B, rec *dcr.Registration) {
	if _, err := json.Marshal(rec); err != nil {
		b.Fatal(err)
	}
}

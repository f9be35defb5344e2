package envelope

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/jwtclaims"
)

const (
	softwareID = "5GEvbfQmJxKDpQm0dw1yEw"
	audience   = "0015800001041REAAY"
	jti        = "0f0c0e9e-8f4b-4a56-9c8d-2b0f4e5e6d7c"
)

var now = time.Unix(1_700_000_000, 0).UTC()

// at is now + d as internal/jose decodes a NumericDate.
func at(d time.Duration) json.Number {
	return json.Number(strconv.FormatInt(now.Add(d).Unix(), 10))
}

func config() *Config {
	return &Config{Audience: []string{"https://bank.example", audience}}
}

// input is a valid request: PS256 with a kid, claims of a five-minute request issued now.
func input() Input {
	return Input{
		Alg:   "PS256",
		KeyID: "tpp-signing-key",
		Claims: map[string]any{
			"iss": softwareID,
			"aud": audience,
			"iat": at(0),
			"exp": at(5 * time.Minute),
			"jti": jti,
		},
		SSA: &dcr.SoftwareStatement{SoftwareID: softwareID},
		Now: now,
	}
}

// TestCheck runs one request per rule (and the edges of each) through Check.
func TestCheck(t *testing.T) {
	cases := []struct {
		name   string
		cfg    func(*Config)
		change func(*Input)
		want   string // substring of the description; "" = accepted
	}{
		{"valid", nil, nil, ""},

		{"alg not allowed", nil, func(in *Input) { in.Alg = "RS256" }, `algorithm "RS256" is not allowed`},
		{"alg none", nil, func(in *Input) { in.Alg = "none" }, "not allowed"},
		{"alg configured", func(c *Config) { c.Algorithms = []string{"RS256"} }, func(in *Input) { in.Alg = "RS256" }, ""},
		{"default alg not configured", func(c *Config) { c.Algorithms = []string{"ES256"} }, nil, "not allowed"},
		{"ES256 by default", nil, func(in *Input) { in.Alg = "ES256" }, ""},

		{"kid missing", nil, func(in *Input) { in.KeyID = "" }, "no kid"},

		{"iss missing", nil, del("iss"), "iss is required"},
		{"iss empty", nil, set("iss", ""), "iss is required"},
		{"iss a number", nil, set("iss", json.Number("7")), "iss is required"},
		{"iss not the software_id", nil, set("iss", "other-software"), "must equal the software statement's software_id"},
		{"iss without an SSA", nil, func(in *Input) { in.SSA = nil; in.Claims["iss"] = "any-issuer" }, ""},
		{"iss required without an SSA", nil, func(in *Input) { in.SSA = nil; delete(in.Claims, "iss") }, "iss is required"},

		{"aud missing", nil, del("aud"), "aud is required"},
		{"aud wrong", nil, set("aud", "https://evil.example"), "aud does not name this authorization server (expected https://bank.example or " + audience + ")"},
		{"aud a number", nil, set("aud", json.Number("5")), "aud must be a string or an array of strings"},
		{"aud null", nil, set("aud", nil), "aud must be"},
		{"aud an array naming us", nil, set("aud", []any{"other", audience}), ""},
		{"aud an array not naming us", nil, set("aud", []any{"other", "more"}), "aud does not name"},
		{"aud an array with a number", nil, set("aud", []any{audience, json.Number("1")}), "aud must be"},
		{"aud empty string", func(c *Config) { c.Audience = append(c.Audience, "") }, set("aud", ""), "aud does not name"},
		{"aud differs in case", nil, set("aud", strings.ToLower(audience)), "aud does not name"},

		{"iat missing", nil, del("iat"), "iat is required"},
		{"iat a string", nil, set("iat", "now"), "iat must be a NumericDate"},
		{"iat in the future", nil, set("iat", at(DefaultLeeway+time.Second)), "iat is in the future"},
		{"iat in the future within leeway", nil, set("iat", at(DefaultLeeway)), ""},
		{"iat too old", nil, func(in *Input) {
			in.Claims["iat"] = at(-DefaultMaxAge - DefaultLeeway - time.Second)
			in.Claims["exp"] = at(-DefaultMaxAge + time.Minute)
		}, "iat is older than 1h0m0s"},
		{"iat too old, max_age configured", func(c *Config) { c.MaxAge = time.Minute }, set("iat", at(-2*time.Minute)), "iat is older than 1m0s"},
		{"leeway configured", func(c *Config) { c.Leeway = time.Second }, set("iat", at(2*time.Second)), "iat is in the future"},
		{"exp missing", nil, del("exp"), "exp is required"},
		{"exp zero", nil, set("exp", json.Number("0")), "exp must be a NumericDate"},
		{"exp past", nil, func(in *Input) {
			in.Claims["iat"] = at(-10 * time.Minute)
			in.Claims["exp"] = at(-DefaultLeeway)
		}, "the request has expired (exp is in the past)"},
		{"exp past within leeway", nil, func(in *Input) {
			in.Claims["iat"] = at(-10 * time.Minute)
			in.Claims["exp"] = at(-DefaultLeeway + time.Second)
		}, ""},
		{"exp equal to iat", nil, set("exp", at(0)), "exp must be after iat"},
		{"exp before iat", nil, func(in *Input) {
			in.Claims["iat"] = at(20 * time.Second)
			in.Claims["exp"] = at(10 * time.Second)
		}, "exp must be after iat"},
		{"lifetime too long", nil, set("exp", at(DefaultMaxLifetime+time.Second)), "exp is more than 1h0m0s after iat"},
		{"lifetime at the limit", nil, set("exp", at(DefaultMaxLifetime)), ""},
		{"lifetime configured", func(c *Config) { c.MaxLifetime = time.Minute }, set("exp", at(2*time.Minute)), "exp is more than 1m0s after iat"},
		{"nbf in the future", nil, set("nbf", at(DefaultLeeway+time.Second)), "the request is not valid yet (nbf)"},
		{"nbf past", nil, set("nbf", at(-time.Minute)), ""},
		{"nbf a string", nil, set("nbf", "soon"), "nbf must be a NumericDate"},

		{"jti missing", nil, del("jti"), "jti is required and must be a non-empty string"},
		{"jti empty", nil, set("jti", ""), "jti is required"},
		{"jti a number", nil, set("jti", json.Number("7")), "jti is required"},
		{"jti too long", nil, set("jti", strings.Repeat("a", jwtclaims.MaxJTILength+1)), "jti is longer than 256 characters"},
		{"jti at the limit", nil, set("jti", strings.Repeat("a", jwtclaims.MaxJTILength)), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			in := input()
			if tc.change != nil {
				tc.change(&in)
			}
			env, derr := Check(cfg, in)
			if tc.want == "" {
				if derr != nil {
					t.Fatalf("refused: %v", derr)
				}
				iss, _ := in.Claims["iss"].(string)
				if env.Issuer != iss || env.JTI != in.Claims["jti"] || env.Times.IssuedAt.IsZero() || env.Times.Expiry.IsZero() {
					t.Fatalf("accepted without reading the claims: %+v", env)
				}
				if env.Replay.Key != ReplayKey(iss, env.JTI) || env.Replay.TTL <= 0 || env.Replay.Reject == nil {
					t.Fatalf("replay claim %+v", env.Replay)
				}
				return
			}
			if derr == nil {
				t.Fatalf("accepted, want a refusal with %q", tc.want)
			}
			if derr.Status != http.StatusBadRequest || derr.Code != dcr.CodeInvalidClientMetadata || !strings.Contains(derr.Description, tc.want) {
				t.Fatalf("got %d %s %q, want 400 invalid_client_metadata with %q", derr.Status, derr.Code, derr.Description, tc.want)
			}
			if !reflect.DeepEqual(env, Envelope{}) {
				t.Fatalf("a refusal returned %+v", env)
			}
		})
	}
}

func set(name string, v any) func(*Input) {
	return func(in *Input) { in.Claims[name] = v }
}

func del(name string) func(*Input) {
	return func(in *Input) { delete(in.Claims, name) }
}

// TestReplay: the replay claim is per issuer and jti, lasts until exp plus leeway, and its
// refusal is a 400 that names the jti.
func TestReplay(t *testing.T) {
	env, derr := Check(config(), input())
	if derr != nil {
		t.Fatal(derr)
	}
	if want := "jti\x00" + softwareID + "\x00" + jti; env.Replay.Key != want {
		t.Fatalf("key %q, want %q", env.Replay.Key, want)
	}
	if want := 5*time.Minute + DefaultLeeway; env.Replay.TTL != want {
		t.Fatalf("TTL %v, want %v", env.Replay.TTL, want)
	}
	if r := env.Replay.Reject; r.Status != http.StatusBadRequest || r.Code != dcr.CodeInvalidClientMetadata || !strings.Contains(r.Description, "already been used") || !strings.Contains(r.Description, jti) {
		t.Fatalf("reject %+v", r)
	}
	other := input()
	other.SSA = nil
	other.Claims["iss"] = "other-software"
	o, derr := Check(config(), other)
	if derr != nil {
		t.Fatal(derr)
	}
	if o.Replay.Key == env.Replay.Key {
		t.Fatal("the same jti from two issuers must be two keys")
	}
	// Within leeway of exp the key is still kept a little while.
	late := input()
	late.Claims["iat"], late.Claims["exp"] = at(-10*time.Minute), at(-DefaultLeeway+time.Second)
	late.Now = now.Add(900 * time.Millisecond)
	if l, derr := Check(config(), late); derr != nil || l.Replay.TTL != time.Second {
		t.Fatalf("late request: %v, TTL %v, want 1s", derr, l.Replay.TTL)
	}
}

// TestCheckWithoutVerifiedClaims: no claims is a wiring bug, answered 500, never accepted.
func TestCheckWithoutVerifiedClaims(t *testing.T) {
	in := input()
	in.Claims = nil
	if _, derr := Check(config(), in); derr == nil || derr.Status != http.StatusInternalServerError {
		t.Fatalf("got %v", derr)
	}
	if _, derr := Check(nil, input()); derr == nil || !strings.Contains(derr.Description, "aud does not name") {
		t.Fatalf("the zero config names no audience: %v", derr)
	}
}

func TestCheckLeavesConfigAlone(t *testing.T) {
	cfg := config()
	if _, derr := Check(cfg, input()); derr != nil {
		t.Fatal(derr)
	}
	if !reflect.DeepEqual(cfg, config()) {
		t.Fatalf("Check changed the config: %+v", cfg)
	}
}

func TestRulesTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Rules {
		if r.Name == "" || r.Check == nil || seen[r.Name] {
			t.Fatalf("rule %q: every rule needs a unique name and a check", r.Name)
		}
		seen[r.Name] = true
	}
	if Rules[len(Rules)-1].Name != "replay" {
		t.Fatal("the replay rule needs iss, jti and exp and must run last")
	}
}

func TestConfig(t *testing.T) {
	var c Config
	c.SetDefaults()
	want := Config{Algorithms: []string{"PS256", "ES256"}, Leeway: 30 * time.Second, MaxAge: time.Hour, MaxLifetime: time.Hour}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
	set := Config{Audience: []string{"a"}, Algorithms: []string{"ES384"}, Leeway: time.Second, MaxAge: time.Minute, MaxLifetime: 2 * time.Minute}
	got := set
	got.SetDefaults()
	if !reflect.DeepEqual(got, set) {
		t.Fatalf("SetDefaults changed a set value: %+v", got)
	}

	if err := config().Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no audience", Config{}, "audience is required"},
		{"empty audience", Config{Audience: []string{"a", ""}}, "empty identifier"},
		{"negative leeway", Config{Audience: []string{"a"}, Leeway: -time.Second}, "negative"},
		{"negative max_age", Config{Audience: []string{"a"}, MaxAge: -time.Second}, "negative"},
		{"negative max_lifetime", Config{Audience: []string{"a"}, MaxLifetime: -time.Second}, "negative"},
		{"HS256", Config{Audience: []string{"a"}, Algorithms: []string{"HS256"}}, "HMAC"},
		{"none", Config{Audience: []string{"a"}, Algorithms: []string{"none"}}, "none"},
		{"unknown alg", Config{Audience: []string{"a"}, Algorithms: []string{"PS999"}}, "unknown alg"},
	}
	for _, tc := range bad {
		before := tc.cfg
		err := tc.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.want)
		}
		if !reflect.DeepEqual(before, tc.cfg) {
			t.Errorf("%s: Validate changed the config", tc.name)
		}
	}
}

// TestPeekReplayKey: the early look-up's key, read from the raw body, is the commit's key for
// the same iss and jti; bodies whose iss or jti the rules would refuse give no key at all.
func TestPeekReplayKey(t *testing.T) {
	env, derr := Check(config(), input())
	if derr != nil {
		t.Fatal(derr)
	}
	body := func(claims map[string]any) []byte {
		raw, err := json.Marshal(claims)
		if err != nil {
			t.Fatal(err)
		}
		return []byte("eyJhbGciOiJQUzI1NiIsImtpZCI6ImsifQ." + base64.RawURLEncoding.EncodeToString(raw) + ".c2ln")
	}
	key, gotJTI, ok := PeekReplayKey(body(input().Claims))
	if !ok || key != env.Replay.Key || gotJTI != jti {
		t.Fatalf("key %q %q %v, want the commit's %q", key, gotJTI, ok, env.Replay.Key)
	}
	if r := ReplayRejection(jti); !reflect.DeepEqual(r, env.Replay.Reject) {
		t.Fatalf("the early refusal %+v differs from the commit's %+v", r, env.Replay.Reject)
	}
	for name, change := range map[string]func(map[string]any){
		"no iss":       func(c map[string]any) { delete(c, "iss") },
		"iss empty":    func(c map[string]any) { c["iss"] = "" },
		"iss a number": func(c map[string]any) { c["iss"] = 7 },
		"iss null":     func(c map[string]any) { c["iss"] = nil },
		"iss too long": func(c map[string]any) { c["iss"] = strings.Repeat("i", maxLookupIssuerLength+1) },
		"no jti":       func(c map[string]any) { delete(c, "jti") },
		"jti empty":    func(c map[string]any) { c["jti"] = "" },
		"jti an array": func(c map[string]any) { c["jti"] = []any{"a"} },
		"jti too long": func(c map[string]any) { c["jti"] = strings.Repeat("a", jwtclaims.MaxJTILength+1) },
	} {
		claims := input().Claims
		change(claims)
		if key, _, ok := PeekReplayKey(body(claims)); ok || key != "" {
			t.Errorf("%s: key %q, want none", name, key)
		}
	}
	for name, b := range map[string]string{
		"empty":              "",
		"no dots":            "abc",
		"one part":           "abc.",
		"empty payload":      "abc..sig",
		"payload not b64":    "abc.!!!.sig",
		"payload not JSON":   "abc." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".sig",
		"payload not object": "abc." + base64.RawURLEncoding.EncodeToString([]byte(`["iss","jti"]`)) + ".sig",
	} {
		if key, _, ok := PeekReplayKey([]byte(b)); ok || key != "" {
			t.Errorf("%s: key %q, want none", name, key)
		}
	}
}

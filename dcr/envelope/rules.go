package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/jwtclaims"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// Input is what the rules check: the facts of a request whose signature has been verified.
type Input struct {
	// Alg and KeyID are the verified JWS header's alg and kid.
	Alg   string
	KeyID string
	// Claims are the verified request claims, as decoded by internal/jose (numbers are
	// json.Number; float64 and int are accepted too).
	Claims map[string]any
	// SSA is the verified software statement, nil when none was verified (configured request
	// keys without the software_statement protection).
	SSA *dcr.SoftwareStatement
	// Now is the time of the request.
	Now time.Time
}

// Envelope is what the rules found: the claims read and the replay claim to commit.
type Envelope struct {
	Issuer string
	JTI    string
	Times  jwtclaims.Times
	// Replay is the one-time key of (iss, jti), remembered until exp plus leeway; claiming it a
	// second time is refused with its Reject.
	Replay dcr.OnceClaim
}

// Rule is one named envelope rule. Check validates one part of in and records what it read
// in env; it returns a rejection or nil.
type Rule struct {
	Name  string
	Check func(cfg *Config, in Input, env *Envelope) *dcr.Error
}

// Rules are run by Check in this order. The replay rule comes last: it needs iss, jti and exp.
var Rules = []Rule{
	{"alg", CheckAlg},
	{"kid", CheckKeyID},
	{"iss", CheckIssuer},
	{"aud", CheckAudience},
	{"iat exp nbf", CheckTimes},
	{"jti", CheckJTI},
	{"replay", CheckReplay},
}

// Check runs every rule of Rules on in. cfg may be nil (the defaults, which reject every
// request since Audience is required); it is not modified. The first rejection is returned.
func Check(cfg *Config, in Input) (Envelope, *dcr.Error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	c.SetDefaults()
	if in.Claims == nil {
		// The adapter calls Check only with verified claims; anything else is a wiring bug.
		return Envelope{}, &dcr.Error{Status: http.StatusInternalServerError, Code: dcr.CodeServerError,
			Description: "the request envelope was checked before its signature was verified"}
	}
	var env Envelope
	for _, r := range Rules {
		if err := r.Check(&c, in, &env); err != nil {
			return Envelope{}, err
		}
	}
	return env, nil
}

// CheckAlg: the header alg is one of cfg.Algorithms. internal/jose enforced the same list
// while verifying; this keeps the envelope correct on its own.
func CheckAlg(cfg *Config, in Input, _ *Envelope) *dcr.Error {
	if !slices.Contains(cfg.Algorithms, in.Alg) {
		return dcr.BadMetadata("the request signature algorithm %q is not allowed (allowed: %s)", clip(in.Alg), strings.Join(cfg.Algorithms, ", "))
	}
	return nil
}

// CheckKeyID: the header names its key (kid): keys are chosen by kid only, never taken from
// the token.
func CheckKeyID(_ *Config, in Input, _ *Envelope) *dcr.Error {
	if in.KeyID == "" {
		return dcr.BadMetadata("the request signature header has no kid")
	}
	return nil
}

// CheckIssuer: iss is a non-empty string and, when a software statement was verified, equals
// its software_id (the request comes from the software the statement describes).
func CheckIssuer(_ *Config, in Input, env *Envelope) *dcr.Error {
	iss, ok, err := jose.StringClaim(in.Claims, "iss")
	if err != nil || !ok || iss == "" {
		return dcr.BadMetadata("iss is required and must be a string")
	}
	if in.SSA != nil && iss != in.SSA.SoftwareID {
		return dcr.BadMetadata("iss %q must equal the software statement's software_id", clip(iss))
	}
	env.Issuer = iss
	return nil
}

// CheckAudience: aud is present, a string or an array of strings, and names one of
// cfg.Audience exactly.
func CheckAudience(cfg *Config, in Input, _ *Envelope) *dcr.Error {
	if _, present := in.Claims["aud"]; !present {
		return dcr.BadMetadata("aud is required")
	}
	ok, err := jose.AudienceContains(in.Claims, cfg.Audience)
	if err != nil {
		return dcr.BadMetadata("aud must be a string or an array of strings")
	}
	if !ok {
		return dcr.BadMetadata("aud does not name this authorization server (expected %s)", strings.Join(cfg.Audience, " or "))
	}
	return nil
}

// CheckTimes: iat and exp are required NumericDates; iat is not in the future nor older than
// cfg.MaxAge; exp is not past, after iat and at most cfg.MaxLifetime after it; nbf, if sent,
// is not in the future; each with cfg.Leeway (jwtclaims.CheckTimes).
func CheckTimes(cfg *Config, in Input, env *Envelope) *dcr.Error {
	times, terr := jwtclaims.CheckTimes(in.Claims, in.Now, TimeRules(cfg))
	if terr != nil {
		derr := dcr.BadMetadata("%s", terr.Describe("the request"))
		if terr.Err != nil {
			derr = derr.WithCause(terr.Err) // the parse detail, for the log
		}
		return derr
	}
	env.Times = times
	return nil
}

// TimeRules are the time-claim rules of a request under cfg (with its defaults applied).
func TimeRules(cfg *Config) jwtclaims.TimeRules {
	return jwtclaims.TimeRules{
		Leeway:          cfg.Leeway,
		RequireIssuedAt: true,
		RequireExpiry:   true,
		MaxAge:          cfg.MaxAge,
		MaxLifetime:     cfg.MaxLifetime,
	}
}

// CheckJTI: jti is a non-empty string of at most jwtclaims.MaxJTILength bytes (it becomes a
// once-store key).
func CheckJTI(_ *Config, in Input, env *Envelope) *dcr.Error {
	jti, ok, err := jose.StringClaim(in.Claims, "jti")
	if err != nil || !ok || jti == "" {
		return dcr.BadMetadata("jti is required and must be a non-empty string")
	}
	if len(jti) > jwtclaims.MaxJTILength {
		return dcr.BadMetadata("jti is longer than %d characters", jwtclaims.MaxJTILength)
	}
	env.JTI = jti
	return nil
}

// CheckReplay builds the replay claim of (iss, jti): the handler claims it atomically with the
// registration's other one-time keys, and a jti already claimed by the same issuer is refused
// then. It is kept until exp plus leeway, after which the request is refused as expired.
func CheckReplay(cfg *Config, in Input, env *Envelope) *dcr.Error {
	env.Replay = dcr.OnceClaim{
		Key:    ReplayKey(env.Issuer, env.JTI),
		TTL:    env.Times.RememberFor(in.Now, cfg.Leeway),
		Reject: ReplayRejection(env.JTI),
	}
	return nil
}

// maxLookupIssuerLength bounds the iss of an unverified replay look-up.
const maxLookupIssuerLength = 256

// ReplayRejection is the answer to a request whose jti its issuer already used: the same 400
// whether the commit's claim or the early look-up (UnverifiedReplayKey) found it.
func ReplayRejection(jti string) *dcr.Error {
	// dcr.BadMetadata("jti %q has already been used", jti), without fmt (strconv.Quote is
	// what %q writes for a string): every registration builds this answer for its claim.
	return &dcr.Error{Status: http.StatusBadRequest, Code: dcr.CodeInvalidClientMetadata,
		Description: "jti " + strconv.Quote(jti) + " has already been used"}
}

// PeekReplayKey is the replay key of a compact JWS request read from its payload before its
// signature is verified, or before it is even fully decoded, for a read-only look-up
// (dcr.Registry.Seen) that refuses a replay at the cost of one base64 and one JSON scan. It
// returns ok false when the body is not a compact JWS whose payload has iss and jti as
// CheckIssuer and CheckJTI accept them; the full decoding and the rules then judge the
// request.
//
// Unverified, iss and jti are whatever the sender wrote, which is safe for a look-up that may
// only refuse: a key is in the once store only because a request verified for that issuer
// claimed it at commit, so a forged iss or jti can at most have its own request refused (it
// would be refused as a replay, or as unsigned, anyway) and can neither mark a key used nor
// make a request pass. The commit's atomic claim stays the one guard against replays. The
// payload is read leniently (a duplicate member: the last one counts), which changes nothing
// for a request the strict decoding accepts, since it has none.
//
// An iss longer than maxLookupIssuerLength is not looked up (an OB software_id has 22
// characters), so the sender of an unverified request cannot make the look-up's key large.
func PeekReplayKey(compact []byte) (key, jti string, ok bool) {
	first := bytes.IndexByte(compact, '.')
	if first < 0 {
		return "", "", false
	}
	n := bytes.IndexByte(compact[first+1:], '.')
	if n <= 0 {
		return "", "", false
	}
	// The payload is decoded into a pooled buffer: nothing of it outlives this call (iss and
	// jti are copied out as strings), and a replay then allocates nothing for it.
	buf := getPayloadBuffer(base64.RawURLEncoding.DecodedLen(n))
	defer putPayloadBuffer(buf)
	payload := (*buf)[:base64.RawURLEncoding.DecodedLen(n)]
	if _, err := base64.RawURLEncoding.Decode(payload, compact[first+1:first+1+n]); err != nil {
		return "", "", false
	}
	iss, jti, found, plain := scanIssJTI(payload)
	if !plain {
		// Escapes, duplicates, anything unusual: let encoding/json read it (member names
		// exactly, as the strict decoding matches them; of duplicates, the last).
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			return "", "", false
		}
		var isStr, jtiStr bool
		iss, isStr = claims["iss"].(string)
		jti, jtiStr = claims["jti"].(string)
		found = isStr && jtiStr
	}
	if !found || iss == "" || len(iss) > maxLookupIssuerLength || jti == "" || len(jti) > jwtclaims.MaxJTILength {
		return "", "", false
	}
	return ReplayKey(iss, jti), jti, true
}

// maxPooledPayload is the largest decode buffer PeekReplayKey keeps for reuse (the handler's
// default body limit): a rare larger body gets a buffer of its own, so that the pool does not
// hold on to whatever size an unverified sender chose.
const maxPooledPayload = 64 << 10

var payloadBuffers = sync.Pool{New: func() any { return new([]byte) }}

// getPayloadBuffer is a pooled buffer of at least n bytes.
func getPayloadBuffer(n int) *[]byte {
	buf := payloadBuffers.Get().(*[]byte)
	if cap(*buf) < n {
		*buf = make([]byte, n)
	}
	return buf
}

func putPayloadBuffer(buf *[]byte) {
	if cap(*buf) <= maxPooledPayload {
		payloadBuffers.Put(buf)
	}
}

// scanIssJTI reads the top-level iss and jti strings of a JSON object in one pass without
// decoding the rest (a request's payload is mostly its software statement, a long string to
// skip). plain is false when the payload is anything but the simple case it reads exactly:
// an escape in a key or in iss or jti, iss or jti twice, or JSON it does not follow; the
// caller then decodes with encoding/json. found reports that both were strings.
func scanIssJTI(b []byte) (iss, jti string, found, plain bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return "", "", false, false
	}
	i = skipSpace(b, i+1)
	var haveIss, haveJTI bool
	if i < len(b) && b[i] == '}' {
		return "", "", false, skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return "", "", false, false
		}
		key, next, escaped := scanString(b, i)
		if next < 0 || escaped || !utf8.Valid(key) {
			return "", "", false, false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return "", "", false, false
		}
		i = skipSpace(b, i+1)
		if i >= len(b) {
			return "", "", false, false
		}
		wanted := string(key) == "iss" || string(key) == "jti"
		switch {
		case wanted && b[i] == '"':
			v, next, escaped := scanString(b, i)
			// encoding/json replaces invalid UTF-8: leave such a string to it.
			if next < 0 || escaped || !utf8.Valid(v) {
				return "", "", false, false
			}
			if string(key) == "iss" {
				if haveIss {
					return "", "", false, false
				}
				iss, haveIss = string(v), true
			} else {
				if haveJTI {
					return "", "", false, false
				}
				jti, haveJTI = string(v), true
			}
			i = next
		case wanted:
			return "", "", false, false // not a string: encoding/json says what it is
		default:
			if i = skipValue(b, i); i < 0 {
				return "", "", false, false
			}
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return "", "", false, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			if skipSpace(b, i+1) != len(b) {
				return "", "", false, false
			}
			return iss, jti, haveIss && haveJTI, true
		default:
			return "", "", false, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads the string starting at b[i] == '"': its raw content, the index after its
// closing quote (-1 if there is none) and whether it holds an escape. It does not check the
// content's UTF-8 (the caller does, for the strings it keeps). Most of a request's payload is
// one long string, its software statement, so the scan goes eight bytes at a time while none
// of them is a quote, a backslash or a control character (jose.SkipPlainString), and byte by
// byte around those.
func scanString(b []byte, i int) (content []byte, next int, escaped bool) {
	j := i + 1
	for {
		j = jose.SkipPlainString(b, j)
		if j >= len(b) {
			return nil, -1, false
		}
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, escaped
		case c == '\\':
			escaped = true
			j += 2 // the escaped character, a quote included, is not the end
		case c < 0x20:
			return nil, -1, false // a control character is not valid in a JSON string
		default:
			j++
		}
	}
}

// skipValue returns the index after the JSON value at b[i], or -1. Nested objects and arrays
// are skipped by depth, strings by their quotes; scalars up to the next delimiter (their
// syntax is not checked: a body that is not JSON fails the strict decoding after the look-up,
// and a look-up may only refuse).
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			_, next, _ := scanString(b, i)
			if next < 0 {
				return -1
			}
			i = next
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			i++
		case ',':
			if depth == 0 {
				return i
			}
			i++
		default:
			i++
		}
		if depth == 0 && i < len(b) && (b[i] == ',' || b[i] == '}' || b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
			return i
		}
	}
	if depth == 0 {
		return i
	}
	return -1
}

// ReplayKey is the once-store key of a request jti: per issuer, since jti is unique only
// within its issuer.
func ReplayKey(iss, jti string) string { return "jti\x00" + iss + "\x00" + jti }

// clip shortens a client-chosen value quoted in a description.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

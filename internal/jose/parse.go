package jose

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

// b64 is unpadded base64url that also refuses non-zero trailing bits, so every token
// has exactly one encoding and the bytes jwx re-encodes for verification are the bytes
// that were signed.
var b64 = base64.RawURLEncoding.Strict()

// compactParts is a syntactically checked compact JWS.
type compactParts struct {
	header Header
	claims map[string]any
	sig    []byte // decoded signature
	// signingInput is header.payload exactly as sent: RFC 7515 §5.2 verifies these bytes, not
	// a re-encoding of the decoded header (which loses whitespace around the JSON object).
	signingInput []byte
}

// ParseUnverified decodes a compact JWS without verifying it.
//
// Nothing it returns is trustworthy; it exists for routing (reading kid or iss to pick a
// key source) and for Verify. It accepts only the compact serialization: exactly three
// base64url parts separated by '.', no whitespace or padding, at most MaxTokenSize
// bytes, a protected header that is a JSON object with a string alg, and a payload that
// is a JSON object. JSON numbers are returned as json.Number.
func ParseUnverified(token []byte) (Header, map[string]any, error) {
	p, err := parseCompact(token)
	if err != nil {
		return Header{}, nil, err
	}
	return p.header, p.claims, nil
}

// Parsed is a compact JWS decoded once, to be routed on (its unverified header and claims)
// and then verified without decoding it again.
type Parsed struct {
	parts *compactParts
}

// Parse decodes a compact JWS without verifying it, under the rules of ParseUnverified.
func Parse(token []byte) (*Parsed, error) {
	p, err := parseCompact(token)
	if err != nil {
		return nil, err
	}
	return &Parsed{parts: p}, nil
}

// Header is the unverified protected header.
func (p *Parsed) Header() Header { return p.parts.header }

// Claims are the unverified claims; after a successful Verify, the verified ones. Callers
// must not modify the map.
func (p *Parsed) Claims() map[string]any { return p.parts.claims }

func parseCompact(token []byte) (*compactParts, error) {
	// The byte-by-byte check of the alphabet is skipped first: the strict base64url decoding
	// of the three parts refuses every other byte but '\r' and '\n' (which it ignores), so a
	// token without those that decodes is one the check passes. A token refused that way is
	// parsed again with the check, which gives the error it gave before anything else.
	if bytes.IndexByte(token, '\n') < 0 && bytes.IndexByte(token, '\r') < 0 {
		if p, err := parseParts(token, false); err == nil {
			return p, nil
		}
	}
	return parseParts(token, true)
}

// parseParts is parseCompact, checking every byte of token against the compact alphabet first
// where checkAlphabet is set.
func parseParts(token []byte, checkAlphabet bool) (*compactParts, error) {
	if len(token) == 0 {
		return nil, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: token is %d bytes, limit is %d", ErrMalformed, len(token), MaxTokenSize)
	}
	if token[0] == '{' {
		return nil, fmt.Errorf("%w: JSON serialization is not accepted, only compact serialization", ErrMalformed)
	}
	if checkAlphabet {
		for i, c := range token {
			if compactChars[c] {
				continue
			}
			switch c {
			case ' ', '\t', '\r', '\n':
				return nil, fmt.Errorf("%w: whitespace at byte %d", ErrMalformed, i)
			case '=':
				return nil, fmt.Errorf("%w: base64 padding '=' at byte %d (base64url must be unpadded)", ErrMalformed, i)
			default:
				return nil, fmt.Errorf("%w: character %q at byte %d is not base64url", ErrMalformed, c, i)
			}
		}
	}
	if n := bytes.Count(token, []byte{'.'}) + 1; n != 3 {
		return nil, fmt.Errorf("%w: compact JWS has %d parts, want 3", ErrMalformed, n)
	}
	first := bytes.IndexByte(token, '.')
	second := first + 1 + bytes.IndexByte(token[first+1:], '.')
	rawHeader, rawPayload, rawSig := token[:first], token[first+1:second], token[second+1:]
	if len(rawHeader) == 0 {
		return nil, fmt.Errorf("%w: protected header is empty", ErrMalformed)
	}
	if len(rawPayload) == 0 {
		return nil, fmt.Errorf("%w: payload is empty (detached payloads are not accepted)", ErrMalformed)
	}

	// The three parts are decoded into one buffer, and the two JSON texts made one string, so
	// that every string of the header and the claims (member names and values without
	// escapes) is a substring of it rather than an allocation of its own.
	buf := make([]byte, b64.DecodedLen(len(rawHeader))+b64.DecodedLen(len(rawPayload))+b64.DecodedLen(len(rawSig)))
	headerJSON, err := decodePart(buf, rawHeader)
	if err != nil {
		return nil, fmt.Errorf("%w: protected header: %v", ErrMalformed, err)
	}
	rest := buf[len(headerJSON):]
	payload, payloadErr := decodePart(rest, rawPayload)
	text := string(buf[:len(headerJSON)+len(payload)])
	rawHdr, err := decodeObjectText(headerJSON, text[:len(headerJSON)])
	if err != nil {
		return nil, fmt.Errorf("%w: protected header: %v", ErrMalformed, err)
	}
	hdr, err := headerFrom(rawHdr)
	if err != nil {
		return nil, fmt.Errorf("%w: protected header: %v", ErrMalformed, err)
	}
	if payloadErr != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, payloadErr)
	}
	claims, err := decodeObjectText(payload, text[len(headerJSON):])
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	sig, err := decodePart(rest[len(payload):], rawSig)
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	return &compactParts{header: hdr, claims: claims, sig: sig, signingInput: token[:second]}, nil
}

// compactChars are the bytes of a compact serialization: the base64url alphabet and '.'
// (a table: the check runs over every byte of a request and of its software statement).
var compactChars = func() (t [256]bool) {
	for c := range 256 {
		t[c] = isBase64URL(byte(c)) || c == '.'
	}
	return t
}()

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// decodePart decodes s into the start of out (which has room for it) and returns the decoded
// bytes, capped so that nothing appended to them reaches the rest of out.
func decodePart(out, s []byte) ([]byte, error) {
	n, err := b64.Decode(out, s)
	if err != nil {
		return nil, fmt.Errorf("invalid base64url: %v", err)
	}
	return out[:n:n], nil
}

// headerFrom extracts the registered parameters this package acts on and checks their
// JSON types; a wrongly typed alg or kid must not be read as "absent".
func headerFrom(raw map[string]any) (Header, error) {
	h := Header{Raw: raw}
	var err error
	var ok bool
	if h.Alg, ok, err = stringMember(raw, "alg"); err != nil {
		return Header{}, err
	} else if !ok || h.Alg == "" {
		return Header{}, fmt.Errorf(`"alg" is missing`)
	}
	if h.Kid, _, err = stringMember(raw, "kid"); err != nil {
		return Header{}, err
	}
	if h.Typ, _, err = stringMember(raw, "typ"); err != nil {
		return Header{}, err
	}
	if h.Cty, _, err = stringMember(raw, "cty"); err != nil {
		return Header{}, err
	}
	if v, present := raw["crit"]; present {
		list, isList := v.([]any)
		if !isList || len(list) == 0 {
			return Header{}, fmt.Errorf(`"crit" must be a non-empty array of strings`)
		}
		h.Crit = make([]string, 0, len(list))
		for _, e := range list {
			s, isString := e.(string)
			if !isString {
				return Header{}, fmt.Errorf(`"crit" must be a non-empty array of strings`)
			}
			h.Crit = append(h.Crit, s)
		}
	}
	return h, nil
}

func stringMember(m map[string]any, name string) (string, bool, error) {
	v, ok := m[name]
	if !ok {
		return "", false, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", true, fmt.Errorf("%q must be a string, got %s", name, JSONType(v))
	}
	return s, true, nil
}

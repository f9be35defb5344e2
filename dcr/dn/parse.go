package dn

import (
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// knownTypes lists the attribute types with a name: canonical name, OID, other aliases.
var knownTypes = []struct {
	name, oid string
	aliases   []string
}{
	{"CN", "2.5.4.3", []string{"commonName"}},
	{"SN", "2.5.4.4", []string{"surname"}},
	{"SERIALNUMBER", "2.5.4.5", nil}, // serialNumber is the same keyword in another case
	{"C", "2.5.4.6", []string{"countryName"}},
	{"L", "2.5.4.7", []string{"localityName"}},
	{"ST", "2.5.4.8", []string{"stateOrProvinceName"}},
	{"STREET", "2.5.4.9", []string{"streetAddress"}},
	{"O", "2.5.4.10", []string{"organizationName"}},
	{"OU", "2.5.4.11", []string{"organizationalUnitName"}},
	{"title", "2.5.4.12", nil},
	{"businessCategory", "2.5.4.15", nil},
	{"postalCode", "2.5.4.17", nil},
	{"name", "2.5.4.41", nil},
	{"GN", "2.5.4.42", []string{"givenName"}},
	{"initials", "2.5.4.43", nil},
	{"generationQualifier", "2.5.4.44", nil},
	{"dnQualifier", "2.5.4.46", nil},
	{"pseudonym", "2.5.4.65", nil},
	{"organizationIdentifier", "2.5.4.97", nil},
	{"UID", "0.9.2342.19200300.100.1.1", []string{"userId"}},
	{"DC", "0.9.2342.19200300.100.1.25", []string{"domainComponent"}},
	{"emailAddress", "1.2.840.113549.1.9.1", []string{"E"}},
	{"jurisdictionL", "1.3.6.1.4.1.311.60.2.1.1", []string{"jurisdictionLocalityName"}},
	{"jurisdictionST", "1.3.6.1.4.1.311.60.2.1.2", []string{"jurisdictionStateOrProvinceName"}},
	{"jurisdictionC", "1.3.6.1.4.1.311.60.2.1.3", []string{"jurisdictionCountryName"}},
}

// typeByAlias maps every lower-cased alias (names and dotted OIDs) to the canonical type.
var typeByAlias = func() map[string]string {
	m := make(map[string]string)
	for _, k := range knownTypes {
		m[strings.ToLower(k.name)] = k.name
		m[k.oid] = k.name
		for _, a := range k.aliases {
			m[strings.ToLower(a)] = k.name
		}
	}
	return m
}()

// canonicalType maps an attribute type as written to its canonical form.
func canonicalType(t string) (string, error) {
	if t == "" {
		return "", fmt.Errorf("empty attribute type")
	}
	lower := strings.ToLower(t)
	if c, ok := typeByAlias[lower]; ok {
		return c, nil
	}
	oid := t
	if strings.HasPrefix(lower, "oid.") {
		oid = t[4:]
	}
	if oid != "" && isDigit(oid[0]) {
		if !validOID(oid) {
			return "", fmt.Errorf("attribute type %q is not a valid dotted OID", t)
		}
		if c, ok := typeByAlias[oid]; ok {
			return c, nil
		}
		return oid, nil
	}
	if !validKeyword(t) {
		return "", fmt.Errorf("attribute type %q is not a keyword or dotted OID", t)
	}
	return "", fmt.Errorf("unknown attribute type %q (write it as a dotted OID)", t)
}

// validOID checks RFC 4512 numericoid: two or more arcs, no leading zeros.
func validOID(s string) bool {
	arcs := strings.Split(s, ".")
	if len(arcs) < 2 {
		return false
	}
	for _, a := range arcs {
		if a == "" || (len(a) > 1 && a[0] == '0') {
			return false
		}
		for i := 0; i < len(a); i++ {
			if !isDigit(a[i]) {
				return false
			}
		}
	}
	return true
}

// validKeyword checks RFC 4512 descr: ALPHA *(ALPHA / DIGIT / "-").
func validKeyword(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isAlpha(s[i]) && !isDigit(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isHex(c byte) bool   { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// Parse parses an RFC 4514 string or an OpenSSL slash-form DN (see the package doc).
func Parse(s string) (Name, error) {
	if len(s) > MaxInputLength {
		return nil, fmt.Errorf("dn: input is %d bytes, longer than the %d allowed", len(s), MaxInputLength)
	}
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("dn: empty distinguished name")
	}
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("dn: input is not valid UTF-8")
	}
	p := &parser{s: s}
	p.skipSpaces()
	if p.peek() == '/' {
		p.slash = true
		p.i++
	}
	rdns, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("dn: %w", err)
	}
	var n Name
	if p.slash {
		for _, rdn := range rdns {
			n = append(n, rdn...)
		}
	} else {
		// RFC 4514 lists RDNs last to first; Name is most significant first.
		for i := len(rdns) - 1; i >= 0; i-- {
			n = append(n, rdns[i]...)
		}
	}
	return n, nil
}

type parser struct {
	s     string
	i     int
	slash bool // OpenSSL slash form: '/' separates RDNs
	count int
}

func (p *parser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *parser) atEnd() bool { return p.i >= len(p.s) }

func (p *parser) skipSpaces() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *parser) rdnSep() byte {
	if p.slash {
		return '/'
	}
	return ','
}

func (p *parser) parse() ([][]Attribute, error) {
	var rdns [][]Attribute
	var rdn []Attribute
	for {
		a, err := p.attribute()
		if err != nil {
			return nil, err
		}
		p.count++
		if p.count > MaxAttributes {
			return nil, fmt.Errorf("more than %d attributes", MaxAttributes)
		}
		rdn = append(rdn, a)
		p.skipSpaces()
		if p.atEnd() {
			return append(rdns, rdn), nil
		}
		switch c := p.peek(); c {
		case '+':
			p.i++
		case p.rdnSep():
			p.i++
			rdns = append(rdns, rdn)
			rdn = nil
		default:
			// Only reachable after a hex string: a string value stops at a separator.
			return nil, fmt.Errorf("unexpected %q at offset %d after the value of %s", c, p.i, a.Type)
		}
		p.skipSpaces()
		if p.atEnd() {
			return nil, fmt.Errorf("trailing %q at offset %d: an attribute must follow", p.s[p.i-1], p.i-1)
		}
	}
}

func (p *parser) attribute() (Attribute, error) {
	p.skipSpaces()
	start := p.i
	for !p.atEnd() {
		c := p.peek()
		if c == '=' || c == '+' || c == p.rdnSep() {
			break
		}
		p.i++
	}
	raw := strings.TrimRight(p.s[start:p.i], " ")
	if p.peek() != '=' {
		if raw == "" {
			return Attribute{}, fmt.Errorf("empty RDN at offset %d", start)
		}
		return Attribute{}, fmt.Errorf("attribute %q at offset %d has no '='", raw, start)
	}
	if raw == "" {
		return Attribute{}, fmt.Errorf("empty attribute type at offset %d", start)
	}
	t, err := canonicalType(raw)
	if err != nil {
		return Attribute{}, fmt.Errorf("%w at offset %d", err, start)
	}
	p.i++ // '='
	p.skipSpaces()
	var v string
	if !p.slash && p.peek() == '#' {
		v, err = p.hexValue(t)
	} else {
		v, err = p.stringValue(t)
	}
	if err != nil {
		return Attribute{}, err
	}
	return Attribute{Type: t, Value: v}, nil
}

// hexValue reads `#hexstring` and decodes the ASN.1 string it encodes.
func (p *parser) hexValue(t string) (string, error) {
	start := p.i
	p.i++ // '#'
	for !p.atEnd() && isHex(p.peek()) {
		p.i++
	}
	digits := p.s[start+1 : p.i]
	if next := p.peek(); next != 0 && next != ' ' && next != '+' && next != ',' {
		return "", fmt.Errorf("%s: bad hex string at offset %d: unexpected %q", t, p.i, next)
	}
	if digits == "" || len(digits)%2 != 0 {
		return "", fmt.Errorf("%s: hex string at offset %d must have an even, non-zero number of hex digits", t, start)
	}
	der, _ := hex.DecodeString(digits) // digits were checked above
	v, err := decodeASN1String(der)
	if err != nil {
		return "", fmt.Errorf("%s: hex string at offset %d: %w", t, start, err)
	}
	return v, nil
}

// stringValue reads an escaped string value up to the next separator or the end, dropping
// unescaped trailing spaces.
func (p *parser) stringValue(t string) (string, error) {
	start := p.i
	var buf []byte
	keep := 0 // length of buf without unescaped trailing spaces
	for !p.atEnd() {
		c := p.peek()
		if c == '+' || c == p.rdnSep() {
			break
		}
		switch {
		case c == '\\':
			b, n, err := p.escape()
			if err != nil {
				return "", fmt.Errorf("%s: %w", t, err)
			}
			buf = append(buf, b)
			keep = len(buf)
			p.i += n
			continue
		case c == 0:
			return "", fmt.Errorf("%s: NUL byte at offset %d must be escaped as \\00", t, p.i)
		case !p.slash && strings.IndexByte(`";<>`, c) >= 0:
			return "", fmt.Errorf("%s: %q at offset %d must be escaped", t, c, p.i)
		}
		buf = append(buf, c)
		if c != ' ' {
			keep = len(buf)
		}
		p.i++
	}
	buf = buf[:keep]
	if !utf8.Valid(buf) {
		return "", fmt.Errorf("%s: value at offset %d is not valid UTF-8", t, start)
	}
	return string(buf), nil
}

// escape decodes the escape at p.i and returns the byte and the input length it took.
func (p *parser) escape() (byte, int, error) {
	rest := p.s[p.i+1:]
	switch {
	case rest == "":
		return 0, 0, fmt.Errorf("dangling '\\' at end of input")
	case len(rest) >= 2 && isHex(rest[0]) && isHex(rest[1]):
		b, _ := hex.DecodeString(rest[:2])
		return b[0], 3, nil
	case p.slash && len(rest) >= 3 && rest[0] == 'x' && isHex(rest[1]) && isHex(rest[2]):
		b, _ := hex.DecodeString(rest[1:3])
		return b[0], 4, nil
	case strings.IndexByte(`,+"\<>;=# `, rest[0]) >= 0:
		return rest[0], 2, nil
	case p.slash && rest[0] < utf8.RuneSelf && rest[0] > ' ' && !isAlpha(rest[0]) && !isDigit(rest[0]):
		// The slash form has no formal grammar; OpenSSL lets a backslash quote any character.
		return rest[0], 2, nil
	}
	r, _ := utf8.DecodeRuneInString(rest)
	return 0, 0, fmt.Errorf("bad escape \"\\%c\" at offset %d", r, p.i)
}

// ASN.1 universal tags of the string types a DN value may have (encoding/asn1 names only some).
const (
	tagNumericString   = 18
	tagVisibleString   = 26
	tagUniversalString = 28
	tagBMPString       = 30
)

// decodeASN1String decodes the BER/DER encoding of one ASN.1 string, with nothing after it.
func decodeASN1String(der []byte) (string, error) {
	var rv asn1.RawValue
	rest, err := asn1.Unmarshal(der, &rv)
	if err != nil {
		return "", fmt.Errorf("not a valid ASN.1 encoding: %v", err)
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("%d bytes of trailing data after the ASN.1 value", len(rest))
	}
	if rv.Class != asn1.ClassUniversal || rv.IsCompound {
		return "", fmt.Errorf("ASN.1 value (class %d, tag %d) is not a string", rv.Class, rv.Tag)
	}
	b := rv.Bytes
	switch rv.Tag {
	case asn1.TagUTF8String:
		if !utf8.Valid(b) {
			return "", fmt.Errorf("UTF8String is not valid UTF-8")
		}
		return string(b), nil
	case asn1.TagPrintableString, asn1.TagIA5String, tagNumericString, tagVisibleString:
		for _, c := range b {
			if c >= utf8.RuneSelf {
				return "", fmt.Errorf("ASN.1 string (tag %d) has a non-ASCII byte", rv.Tag)
			}
		}
		return string(b), nil
	case asn1.TagT61String:
		// Read as Latin-1, like most implementations: T.61 proper is never used in practice.
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), nil
	case tagBMPString:
		if len(b)%2 != 0 {
			return "", fmt.Errorf("BMPString has an odd number of bytes")
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		}
		return validRunes(utf16.Decode(u), "BMPString")
	case tagUniversalString:
		if len(b)%4 != 0 {
			return "", fmt.Errorf("UniversalString length is not a multiple of 4")
		}
		r := make([]rune, len(b)/4)
		for i := range r {
			r[i] = rune(uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3]))
		}
		return validRunes(r, "UniversalString")
	}
	return "", fmt.Errorf("unsupported ASN.1 type (tag %d) for a DN value", rv.Tag)
}

func validRunes(rs []rune, what string) (string, error) {
	for _, r := range rs {
		if !utf8.ValidRune(r) || r == utf8.RuneError {
			return "", fmt.Errorf("%s contains an invalid character", what)
		}
	}
	return string(rs), nil
}

// Package dn parses and compares X.509 distinguished names, so that the Open Banking claim
// tls_client_auth_subject_dn can be checked against the subject of a TLS client certificate.
//
// # Accepted input
//
// Parse accepts two spellings of a DN:
//
//   - RFC 4514 strings such as `CN=x,OU=y,O=OpenBanking,C=GB`, which list the RDNs last to
//     first (this is what Go's pkix.Name.String and `openssl x509 -nameopt RFC2253` print).
//     OpenSSL's one-line form `C = GB, O = X` is the same grammar with spaces around '=', ','
//     and '+', and is accepted too.
//   - OpenSSL's slash form `/C=GB/O=OpenBanking/OU=x/CN=y`, which lists the RDNs first to last.
//     The input is in this form when its first non-space character is '/'.
//
// In both forms '+' joins the attributes of a multi-valued RDN (`CN=a+UID=b`); a literal '+'
// in a value must be escaped. RDNs are separated by ',' (RFC 4514) or '/' (slash form); ';' is
// not a separator (RFC 4514 dropped it) and must be escaped in a value.
//
// Escapes (RFC 4514 §2.4): a backslash followed by one of `, + " \ < > ; = # space` stands
// for that character, and a backslash followed by two hex digits stands for that byte (UTF-8
// sequences are written as several pairs, `\C3\A9`). The slash form additionally accepts `\/`,
// OpenSSL's `\xHH` and a backslash before any other ASCII punctuation. Any other escape is an
// error. The decoded value must be valid UTF-8.
//
// In the RFC 4514 form a value starting with '#' is a hex string: the BER/DER encoding of an
// ASN.1 string (UTF8String, PrintableString, IA5String, NumericString, VisibleString,
// T61String read as Latin-1, BMPString, UniversalString), decoded with encoding/asn1. Go's
// pkix.Name.String prints attributes it has no name for this way (`2.5.4.97=#1322...`), so
// that spelling compares equal to `organizationIdentifier=PSDGB-OB-...`. In the slash form a
// leading '#' is literal, because OpenSSL does not use hex strings there.
//
// Unescaped spaces around '=', ',', '+' and '/' are not part of a value; an escaped space
// (`\ `) is.
//
// # Attribute types
//
// Types are case-insensitive; well-known names, their long names and their dotted OIDs are
// aliases for one canonical type (OIDs may also be written `OID.2.5.4.3`):
//
//	CN           commonName              2.5.4.3
//	C            countryName             2.5.4.6
//	L            localityName            2.5.4.7
//	ST           stateOrProvinceName     2.5.4.8
//	STREET       streetAddress           2.5.4.9
//	O            organizationName        2.5.4.10
//	OU           organizationalUnitName  2.5.4.11
//	SERIALNUMBER serialNumber            2.5.4.5
//	SN           surname                 2.5.4.4   (SN is surname, as in RFC 4519 and OpenSSL)
//	GN           givenName               2.5.4.42
//	title                                2.5.4.12
//	businessCategory                     2.5.4.15
//	postalCode                           2.5.4.17
//	name                                 2.5.4.41
//	initials                             2.5.4.43
//	generationQualifier                  2.5.4.44
//	dnQualifier                          2.5.4.46
//	pseudonym                            2.5.4.65
//	organizationIdentifier               2.5.4.97
//	DC           domainComponent         0.9.2342.19200300.100.1.25
//	UID          userId                  0.9.2342.19200300.100.1.1
//	emailAddress E                       1.2.840.113549.1.9.1
//	jurisdictionL  jurisdictionLocalityName         1.3.6.1.4.1.311.60.2.1.1
//	jurisdictionST jurisdictionStateOrProvinceName  1.3.6.1.4.1.311.60.2.1.2
//	jurisdictionC  jurisdictionCountryName          1.3.6.1.4.1.311.60.2.1.3
//
// Any other type must be written as a dotted OID (no leading zeros in an arc) and is kept in
// that form; an unknown keyword is an error rather than a silent mismatch.
//
// # Comparison
//
// Equal compares two names as multisets of (type, value) pairs: order does not matter
// (RFC 4514 and the slash form list RDNs in opposite orders, and multi-valued RDNs are
// flattened), but each pair must occur the same number of times in both, so a missing or
// extra attribute never matches. Values are compared as X.520 caseIgnoreMatch does: leading
// and trailing white space is ignored, inner white space runs count as one space, and letters
// are compared with Unicode simple case folding. This applies to every attribute, including
// C, emailAddress and DC.
//
// # Limits
//
// Parse rejects the empty string, input longer than 4096 bytes, more than 64 attributes, an
// attribute without '=', an empty or unknown type, bad escapes, bad hex strings, an empty RDN
// (`CN=a,,O=b`, a trailing ',') and anything left over after a hex string. Errors say what is
// wrong and at which byte offset.
package dn

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on Parse input: a DN from a registration request is attacker-supplied, and real
// certificate subjects are far below both.
const (
	MaxInputLength = 4096
	MaxAttributes  = 64
)

// Attribute is one type=value pair of a DN. Type is canonical (see the package doc): a short
// name such as "CN" or "organizationIdentifier", or a dotted OID for a type with no name.
// Value is the decoded string, as written (comparison is case- and space-insensitive).
type Attribute struct {
	Type, Value string
}

// Name is a DN as a flat list of attributes, most significant first (the order of the
// certificate's RDNSequence and of the slash form). Multi-valued RDNs are flattened.
type Name []Attribute

// FromPKIX returns the attributes of n. When n.Names is set (as it is for a name parsed from a
// certificate) it is used as is, so that attributes Go has no field for, such as
// organizationIdentifier (2.5.4.97), are kept, and repeated attributes are not collapsed.
// Otherwise the name is built from its fields and ExtraNames, as n.ToRDNSequence would
// marshal it. Non-string values are formatted with fmt.Sprint.
func FromPKIX(n pkix.Name) Name {
	var atvs []pkix.AttributeTypeAndValue
	if len(n.Names) > 0 {
		atvs = n.Names
	} else {
		for _, rdn := range n.ToRDNSequence() {
			atvs = append(atvs, rdn...)
		}
	}
	out := make(Name, 0, len(atvs))
	for _, atv := range atvs {
		oid := atv.Type.String()
		t, ok := typeByAlias[strings.ToLower(oid)]
		if !ok {
			t = oid
		}
		var v string
		switch x := atv.Value.(type) {
		case string:
			v = x
		default:
			v = fmt.Sprint(x)
		}
		out = append(out, Attribute{Type: t, Value: v})
	}
	return out
}

// FromCertificate returns the subject of c (nil for a nil certificate).
func FromCertificate(c *x509.Certificate) Name {
	if c == nil {
		return nil
	}
	return FromPKIX(c.Subject)
}

// MatchCertificate parses s and reports whether it is Equal to the subject of c. A parse error
// or a nil certificate is returned as an error (never as a plain mismatch) so that callers can
// tell the client what is wrong.
//
// A TPP sends the same DN with every request from the same certificate: the comparison keys of
// a parsed certificate's subject, and the last DN string found to match it, are kept (see
// subjectMatches), so that the usual call parses nothing.
func MatchCertificate(s string, c *x509.Certificate) (bool, error) {
	cached, ok := subjectMatches.get(c)
	if ok && cached.matched != "" && cached.matched == s {
		return true, nil
	}
	n, err := Parse(s)
	if err != nil {
		return false, err
	}
	if c == nil {
		return false, errors.New("dn: no certificate to match against")
	}
	if !ok {
		cached = subjectMatch{keys: FromCertificate(c).keys()}
	}
	match := equalKeys(n.keys(), cached.keys)
	if match {
		cached.matched = strings.Clone(s) // s may be a slice of a whole request
	}
	if match || !ok {
		subjectMatches.put(c, cached)
	}
	return match, nil
}

// Equal reports whether a and b name the same entity: the same multiset of (type, value)
// pairs, with types compared canonically and values compared as caseIgnoreMatch does.
func Equal(a, b Name) bool {
	if len(a) != len(b) {
		return false
	}
	return equalKeys(a.keys(), b.keys())
}

func equalKeys(ka, kb []string) bool {
	if len(ka) != len(kb) {
		return false
	}
	for i := range ka {
		if ka[i] != kb[i] {
			return false
		}
	}
	return true
}

// keys returns the sorted comparison keys of n's attributes: the canonical type, a NUL and the
// value as normalizeValue makes it, each built in one allocation.
func (n Name) keys() []string {
	keys := make([]string, len(n))
	var b strings.Builder
	for i, a := range n {
		t := a.Type
		if c, err := canonicalType(t); err == nil {
			t = c
		}
		b.Grow(len(t) + 1 + len(a.Value))
		b.WriteString(t)
		b.WriteByte(0)
		writeNormalized(&b, a.Value)
		keys[i] = b.String()
		b = strings.Builder{}
	}
	sort.Strings(keys)
	return keys
}

// normalizeValue implements the comparison half of X.520 caseIgnoreMatch: white space trimmed
// and collapsed, and every rune replaced by a fixed member of its simple case-folding orbit.
func normalizeValue(v string) string {
	var b strings.Builder
	b.Grow(len(v))
	writeNormalized(&b, v)
	return b.String()
}

// writeNormalized writes normalizeValue(v): the fields of v (strings.Fields) joined by single
// spaces, every rune folded.
func writeNormalized(b *strings.Builder, v string) {
	first := true
	for f := range strings.FieldsSeq(v) {
		if !first {
			b.WriteByte(' ')
		}
		first = false
		for _, r := range f {
			b.WriteRune(foldRune(r))
		}
	}
}

// foldRune maps r to the smallest rune of its case-folding orbit, so that two runes are
// EqualFold exactly when they fold to the same rune. In ASCII that is the upper-case letter
// (the orbits of k and s hold K and ſ, above it) and every other character itself.
func foldRune(r rune) rune {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			return r - ('a' - 'A')
		}
		return r
	}
	return foldOrbit(r)
}

// foldOrbit is foldRune by walking r's orbit (unicode.SimpleFold).
func foldOrbit(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f < m {
			m = f
		}
	}
	return m
}

// String returns the RFC 4514 form of n: RDNs last to first, joined by ',' without spaces,
// canonical types, and values escaped so that Parse reads them back unchanged. Besides the
// characters RFC 4514 requires escaping, control characters and bytes that are not UTF-8 are
// written as \XX so that the result is safe to log. It is deterministic but keeps n's order
// and case; use Equal, not string comparison, to compare names.
func (n Name) String() string {
	var b strings.Builder
	for i := len(n) - 1; i >= 0; i-- {
		if i != len(n)-1 {
			b.WriteByte(',')
		}
		t := n[i].Type
		if c, err := canonicalType(t); err == nil {
			t = c
		}
		b.WriteString(t)
		b.WriteByte('=')
		writeEscaped(&b, n[i].Value)
	}
	return b.String()
}

func writeEscaped(b *strings.Builder, v string) {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && size <= 1, r < 0x20, r == 0x7f:
			b.WriteByte('\\')
			b.WriteByte(hexDigits[v[i]>>4])
			b.WriteByte(hexDigits[v[i]&0xf])
		case strings.ContainsRune(`,+"\<>;`, r),
			r == ' ' && (i == 0 || i+size == len(v)),
			r == '#' && i == 0:
			b.WriteByte('\\')
			b.WriteRune(r)
		default:
			b.WriteString(v[i : i+size])
		}
		i += size
	}
}

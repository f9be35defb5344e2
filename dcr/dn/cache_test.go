package dn

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"sort"
	"strings"
	"testing"
	"unicode"
)

// uncachedMatch is MatchCertificate as it was before the cache: parse, compare, every time.
func uncachedMatch(s string, c *x509.Certificate) (bool, error) {
	n, err := Parse(s)
	if err != nil {
		return false, err
	}
	if c == nil {
		return false, fmt.Errorf("dn: no certificate to match against")
	}
	return equalKeys(referenceKeys(n), referenceKeys(FromCertificate(c))), nil
}

// referenceKeys are Name.keys as they were built before: strings.Join of strings.Fields and a
// fold of every rune by walking its orbit.
func referenceKeys(n Name) []string {
	keys := make([]string, len(n))
	for i, a := range n {
		t := a.Type
		if c, err := canonicalType(t); err == nil {
			t = c
		}
		v := strings.Join(strings.Fields(a.Value), " ")
		var b strings.Builder
		for _, r := range v {
			b.WriteRune(foldOrbit(r))
		}
		keys[i] = t + "\x00" + b.String()
	}
	sort.Strings(keys)
	return keys
}

// TestMatchCertificateCached: the same answers as the uncached match, in any order and
// repeated, for matching and mismatching spellings, malformed DNs (the empty string among
// them, after a match is cached), a nil certificate and a certificate built in memory.
func TestMatchCertificateCached(t *testing.T) {
	cert, other := newCert(t, obSubject()), newCert(t, pkix.Name{CommonName: "other", Country: []string{"GB"}})
	inMemory := &x509.Certificate{Subject: obSubject()} // no RawSubject: never cached
	dns := []string{
		cert.Subject.String(),
		"/C=GB/O=OpenBanking/OU=0015800001HQQrZAAX/CN=5GEvbfQmJxKDpQm0dw1yEw/organizationIdentifier=" + orgID,
		"c=gb,o=OPENBANKING,ou=0015800001hqqrzaax,cn=5gevbfqmjxkdpqm0dw1yew,organizationidentifier=psdgb-ob-unknown0015800001hqqrzaax",
		"/C=GB/O=OpenBanking/OU=0015800001HQQrZAAY/CN=5GEvbfQmJxKDpQm0dw1yEw/organizationIdentifier=" + orgID,
		"CN=other,C=GB", "CN=OTHER , C=gb", "CN=other", "", " ", "CN", "CN=a,,O=b", "CN=\xff",
	}
	subjectMatches.mu.Lock()
	subjectMatches.m = nil
	subjectMatches.mu.Unlock()
	for round := range 3 {
		for _, c := range []*x509.Certificate{cert, other, inMemory, nil} {
			for i := range dns {
				s := dns[(i*7+round)%len(dns)] // another order each round
				got, gerr := MatchCertificate(s, c)
				want, werr := uncachedMatch(s, c)
				if got != want || (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
					t.Fatalf("round %d, MatchCertificate(%q, %v) = %v, %v; uncached %v, %v", round, s, c != nil, got, gerr, want, werr)
				}
			}
		}
	}
	subjectMatches.mu.RLock()
	defer subjectMatches.mu.RUnlock()
	if len(subjectMatches.m) != 2 {
		t.Fatalf("cached %d subjects, want the 2 parsed certificates", len(subjectMatches.m))
	}
}

// TestSubjectCacheBounded: the cache never holds more than its bound.
func TestSubjectCacheBounded(t *testing.T) {
	c := subjectCache{max: 4}
	for i := range 10 {
		cert := &x509.Certificate{RawSubject: []byte{byte(i)}}
		c.put(cert, subjectMatch{matched: fmt.Sprint(i)})
		if len(c.m) > c.max {
			t.Fatalf("%d entries, bound %d", len(c.m), c.max)
		}
		if e, ok := c.get(cert); !ok || e.matched != fmt.Sprint(i) {
			t.Fatalf("entry %d: %+v, %v", i, e, ok)
		}
	}
}

// TestKeysAgreeWithReference: keys built in one allocation are the keys built before, for
// values with ASCII and Unicode letters and white space of every kind.
func TestKeysAgreeWithReference(t *testing.T) {
	values := []string{"", " ", "a", "  Open   Banking  ", "\tx\ny\u00a0z\u2003", "Zürich", "ǅ ǈ ǋ", "ſ K k Ω ω ẞ ß",
		"İstanbul ı", "ÀÉÎõü", "日本", "\u0085lead", "mixed\u3000space", strings.Repeat("ab ", 50)}
	var n Name
	for i, v := range values {
		n = append(n, Attribute{Type: []string{"CN", "o", "2.5.4.97", "1.2.3.4", "bogus type"}[i%5], Value: v})
	}
	if got, want := n.keys(), referenceKeys(n); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("keys\n got %q\nwant %q", got, want)
	}
	for _, v := range values {
		if got, want := normalizeValue(v), referenceKeys(Name{{Type: "CN", Value: v}})[0][len("CN\x00"):]; got != want {
			t.Errorf("normalizeValue(%q) = %q, want %q", v, got, want)
		}
	}
}

// TestFoldRuneASCII: the ASCII shortcut of foldRune is the orbit walk, and so is every other
// rune's fold.
func TestFoldRuneASCII(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0x3000 && r < 0x10000 && r%97 != 0 {
			continue // a sample beyond the scripts with case
		}
		if got, want := foldRune(r), foldOrbit(r); got != want {
			t.Fatalf("foldRune(%U) = %U, want %U", r, got, want)
		}
	}
}

// TestMatchCertificateCachedParsesNothing: once a DN string matched a certificate, matching
// it again allocates nothing (no parse, no keys).
func TestMatchCertificateCachedParsesNothing(t *testing.T) {
	cert := newCert(t, obSubject())
	s := "/C=GB/O=OpenBanking/OU=0015800001HQQrZAAX/CN=5GEvbfQmJxKDpQm0dw1yEw/organizationIdentifier=" + orgID
	if ok, err := MatchCertificate(s, cert); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = MatchCertificate(s, cert) }); n != 0 {
		t.Fatalf("%v allocations per cached match", n)
	}
}

package dn

import (
	"crypto/x509"
	"sync"
)

// subjectMatches are the subjects of the client certificates MatchCertificate has seen.
var subjectMatches = subjectCache{max: 1024}

// subjectMatch is what MatchCertificate keeps of a certificate's subject: its comparison keys
// and the last DN string found to match it ("" before one did). A DN string that parses the
// same way every time matches the same subject every time, so matched needs no parse.
type subjectMatch struct {
	keys    []string
	matched string
}

// subjectCache maps a certificate's DER subject to its subjectMatch. A parsed certificate's
// Subject is what its RawSubject says, so the DER is the key; a certificate without it (one
// built in memory, not parsed) is never cached. It is bounded: once it holds max subjects the
// next one empties it (mTLS client certificates come from the configured CAs, so the working
// set is the TPPs', far below the bound).
type subjectCache struct {
	max int
	mu  sync.RWMutex
	m   map[string]subjectMatch
}

func (c *subjectCache) get(cert *x509.Certificate) (subjectMatch, bool) {
	if cert == nil || len(cert.RawSubject) == 0 {
		return subjectMatch{}, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[string(cert.RawSubject)]
	return e, ok
}

func (c *subjectCache) put(cert *x509.Certificate, e subjectMatch) {
	if len(cert.RawSubject) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]subjectMatch)
	}
	c.m[string(cert.RawSubject)] = e
}

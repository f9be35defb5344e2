package tlsrevocation

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Kinds of revocation sources.
const (
	SourceCRL  = "crl"
	SourceOCSP = "ocsp"
)

// Source is where an answer came from: a CRL (URL or file) or an OCSP responder (URL).
type Source struct {
	Kind     string
	Location string
}

// Answer is one source's statement about one certificate.
type Answer struct {
	Source
	Revoked   bool
	RevokedAt time.Time
	// Reason is the RFC 5280 CRLReason code (0 when the source gave none).
	Reason int
}

// CertStatus is the outcome for one certificate of a chain.
type CertStatus struct {
	Cert, Issuer *x509.Certificate
	Leaf         bool
	// Answer is the deciding answer; nil when no source answered.
	Answer *Answer
	// Errors say why each source that applied gave no answer.
	Errors []error
}

// Result is the outcome for every verified chain of one handshake.
type Result struct {
	// Revoked is the first revoked certificate found, if any.
	Revoked *CertStatus
	// Unknown are the certificates no source answered for.
	Unknown []*CertStatus
	// Checked counts the certificates that had an answer.
	Checked int
}

// checkerConfig configures a Checker.
type checkerConfig struct {
	ocsp, distributionPoints bool
	crlFiles, crlURLs        []string
	maxBytes                 int64
	tls                      *tls.Config
	cache                    cacheConfig
}

// Checker finds the revocation status of certificate chains. It is safe for concurrent use
// and shared (through a pool) by every verifier with the same configuration, so a config
// reload keeps the cache.
type Checker struct {
	cfg   checkerConfig
	fetch *fetcher
	cache *cache
}

func newChecker(cfg checkerConfig) *Checker {
	return &Checker{cfg: cfg, fetch: newFetcher(cfg.cache.timeout, cfg.maxBytes, cfg.tls), cache: newCache(cfg.cache)}
}

// errNoSource is the status of a leaf that names no revocation source.
var errNoSource = errors.New("the certificate names no OCSP responder or CRL distribution point (http or https), and no configured CRL is from its issuer")

// Check finds the status of the leaf and the intermediates of every chain (the last
// certificate of a chain is the trust anchor and is not checked). It stops at the first
// revoked certificate.
func (ch *Checker) Check(ctx context.Context, chains [][]*x509.Certificate) Result {
	var res Result
	seen := make(map[[64]byte]bool)
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			cert, issuer := chain[i], chain[i+1]
			var k [64]byte
			a, b := sha256.Sum256(cert.Raw), sha256.Sum256(issuer.Raw)
			copy(k[:32], a[:])
			copy(k[32:], b[:])
			if seen[k] {
				continue
			}
			seen[k] = true
			st, applies := ch.status(ctx, cert, issuer, i == 0)
			switch {
			case !applies:
			case st.Answer == nil:
				res.Unknown = append(res.Unknown, st)
			case st.Answer.Revoked:
				res.Revoked = st
				return res
			default:
				res.Checked++
			}
		}
	}
	return res
}

// status asks the sources of cert in order until one answers. applies is false for an
// intermediate that names no source.
func (ch *Checker) status(ctx context.Context, cert, issuer *x509.Certificate, leaf bool) (*CertStatus, bool) {
	st := &CertStatus{Cert: cert, Issuer: issuer, Leaf: leaf}
	sources := 0
	fail := func(src Source, err error) {
		st.Errors = append(st.Errors, fmt.Errorf("%s %s: %w", src.Kind, clip(src.Location), err))
	}

	// Configured CRLs: they apply to the certificates of their issuer.
	for _, f := range ch.cfg.crlFiles {
		src := Source{Kind: SourceCRL, Location: f}
		c, err := ch.crlFromFile(ctx, f)
		if ok, n := ch.fromCRL(st, src, c, err, fail); ok {
			return st, true
		} else {
			sources += n
		}
	}
	for _, u := range ch.cfg.crlURLs {
		src := Source{Kind: SourceCRL, Location: u}
		c, err := ch.crlFromURL(ctx, u)
		if ok, n := ch.fromCRL(st, src, c, err, fail); ok {
			return st, true
		} else {
			sources += n
		}
	}

	if ch.cfg.ocsp {
		for _, u := range cert.OCSPServer {
			if checkURL(u) != nil {
				continue
			}
			sources++
			a, err := ch.ocspAnswer(ctx, u, cert, issuer)
			if err != nil {
				fail(Source{Kind: SourceOCSP, Location: u}, err)
				continue
			}
			st.Answer = a
			return st, true
		}
	}

	if ch.cfg.distributionPoints {
		for _, u := range cert.CRLDistributionPoints {
			if checkURL(u) != nil {
				continue
			}
			sources++
			src := Source{Kind: SourceCRL, Location: u}
			c, err := ch.crlFromURL(ctx, u)
			if err == nil && !c.covers(cert) {
				err = errors.New("the CRL is from another issuer")
			}
			if ok, _ := ch.fromCRL(st, src, c, err, fail); ok {
				return st, true
			}
		}
	}

	if sources == 0 {
		if !leaf {
			return st, false
		}
		st.Errors = append(st.Errors, errNoSource)
	}
	return st, true
}

// fromCRL records what a configured or distribution-point CRL says about st.Cert. It reports
// whether it decided, and whether it counted as a source (a CRL that could not be had might
// have been from the certificate's issuer; one from another issuer does not count).
func (ch *Checker) fromCRL(st *CertStatus, src Source, c *crl, err error, fail func(Source, error)) (bool, int) {
	if err != nil {
		fail(src, err)
		return false, 1
	}
	if !c.covers(st.Cert) {
		return false, 0
	}
	if err := c.verifiedBy(st.Issuer); err != nil {
		fail(src, err)
		return false, 1
	}
	st.Answer = c.answer(st.Cert, src)
	return true, 1
}

// ReasonName is the RFC 5280 name of a CRLReason code.
func ReasonName(code int) string {
	names := map[int]string{
		0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
		4: "superseded", 5: "cessationOfOperation", 6: "certificateHold", 8: "removeFromCRL",
		9: "privilegeWithdrawn", 10: "aACompromise",
	}
	if n, ok := names[code]; ok {
		return n
	}
	return "reason " + strconv.Itoa(code)
}

package tlsrevocation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/internal/tlsclient"
)

func init() {
	caddy.RegisterModule(Verifier{})
}

// Fail modes.
const (
	FailHard = "hard"
	FailSoft = "soft"
)

// Defaults.
const (
	defaultTimeout   = 5 * time.Second
	defaultMaxSize   = 4 << 20
	defaultCacheSize = 10000
	defaultCacheTTL  = 5 * time.Minute
	defaultRetry     = 30 * time.Second
)

// Verifier refuses TLS client certificates that have been revoked (see the package doc for
// the sources and their order). It runs in the handshake of every connection that presents
// a certificate, after crypto/tls verified the chain against the client_auth trust pool.
type Verifier struct {
	// FailMode is what happens when no source can answer for a certificate: "hard" (the
	// default) refuses the handshake, "soft" accepts it and logs a warning.
	FailMode string `json:"fail_mode,omitempty"`
	// OCSP asks the responders of the certificates' Authority Information Access; default on.
	OCSP *bool `json:"ocsp,omitempty"`
	// CRLDistributionPoints fetches the CRLs the certificates name; default on.
	CRLDistributionPoints *bool `json:"crl_distribution_points,omitempty"`
	// CRLFiles are CRL files (DER or PEM), each used for the certificates of its issuer. A
	// file that changes is read again at the next handshake.
	CRLFiles []string `json:"crl_files,omitempty"`
	// CRLURLs are CRLs (http or https) used for the certificates of their issuer, whatever
	// the certificates name.
	CRLURLs []string `json:"crl_urls,omitempty"`
	// Timeout of one fetch, default 5s. One handshake waits at most twice this in all.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// MaxSize of a CRL or OCSP response in bytes, default 4 MiB.
	MaxSize int64 `json:"max_size,omitempty"`
	// CacheSize bounds the cached CRLs and OCSP responses, default 10000.
	CacheSize int `json:"cache_size,omitempty"`
	// CacheTTL is how long an answer without a nextUpdate is used, default 5m.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`
	// CacheMaxAge, when set, refetches an answer sooner than its nextUpdate (it stays usable
	// until its nextUpdate if the refetch fails); default unset: at its nextUpdate.
	CacheMaxAge caddy.Duration `json:"cache_max_age,omitempty"`
	// RefreshInterval is the least time between two fetches of a source that failed, default
	// 30s: a source that is down costs one fetch per interval, not one per handshake.
	RefreshInterval caddy.Duration `json:"refresh_interval,omitempty"`
	// TLS is the TLS client configuration of https fetches (reverse_proxy's names, e.g. a
	// tls_trust_pool for the CA of the CRL server); default the system roots.
	TLS *tlsclient.Config `json:"tls,omitempty"`

	ctx     caddy.Context
	logger  *zap.Logger
	checker *Checker
	poolKey string
}

// CaddyModule returns the Caddy module information.
func (Verifier) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls.client_auth.verifier.revocation",
		New: func() caddy.Module { return new(Verifier) },
	}
}

// checkers holds one Checker (its cache and HTTP client) per configuration.
var checkers = caddy.NewUsagePool()

type pooledChecker struct{ *Checker }

func (pooledChecker) Destruct() error { return nil }

// Provision checks the configuration and takes the shared checker for it.
func (v *Verifier) Provision(ctx caddy.Context) error {
	v.ctx, v.logger = ctx, ctx.Logger()
	if err := v.Validate(); err != nil {
		return err
	}
	if v.OCSP != nil && !*v.OCSP && v.CRLDistributionPoints != nil && !*v.CRLDistributionPoints && len(v.CRLFiles)+len(v.CRLURLs) == 0 {
		v.logger.Warn("revocation: every source is off; with fail_mode hard every client certificate is refused")
	}
	digest, err := v.TLS.Digest()
	if err != nil {
		return fmt.Errorf("revocation: %w", err)
	}
	limits := *v
	limits.FailMode, limits.TLS = "", nil
	b, _ := json.Marshal(limits)
	v.poolKey = "revocation-checker:" + string(b) + ":" + digest
	val, _, err := checkers.LoadOrNew(v.poolKey, func() (caddy.Destructor, error) {
		tc, err := v.TLS.Make(ctx)
		if err != nil {
			return nil, fmt.Errorf("revocation: tls: %w", err)
		}
		if tc.InsecureSkipVerify {
			v.logger.Warn("revocation: tls_insecure_skip_verify is on: CRL servers are not authenticated (CRLs and OCSP answers still must be signed by the issuer)")
		}
		return pooledChecker{newChecker(v.checkerConfig(tc))}, nil
	})
	if err != nil {
		return err
	}
	v.checker = val.(pooledChecker).Checker
	return nil
}

func (v *Verifier) checkerConfig(tc *tls.Config) checkerConfig {
	dur := func(d caddy.Duration, def time.Duration) time.Duration {
		if d > 0 {
			return time.Duration(d)
		}
		return def
	}
	cfg := checkerConfig{
		ocsp:               v.OCSP == nil || *v.OCSP,
		distributionPoints: v.CRLDistributionPoints == nil || *v.CRLDistributionPoints,
		crlFiles:           v.CRLFiles,
		crlURLs:            v.CRLURLs,
		maxBytes:           v.MaxSize,
		tls:                tc,
		cache: cacheConfig{
			maxEntries: v.CacheSize,
			ttl:        dur(v.CacheTTL, defaultCacheTTL),
			maxAge:     time.Duration(v.CacheMaxAge),
			retry:      dur(v.RefreshInterval, defaultRetry),
			timeout:    dur(v.Timeout, defaultTimeout),
		},
	}
	if cfg.maxBytes <= 0 {
		cfg.maxBytes = defaultMaxSize
	}
	if cfg.cache.maxEntries <= 0 {
		cfg.cache.maxEntries = defaultCacheSize
	}
	return cfg
}

// Validate checks the fail mode, the CRL URLs and the limits.
func (v *Verifier) Validate() error {
	switch v.FailMode {
	case "", FailHard, FailSoft:
	default:
		return fmt.Errorf("revocation: fail_mode must be hard or soft, not %q", v.FailMode)
	}
	for _, u := range v.CRLURLs {
		if err := checkURL(u); err != nil {
			return fmt.Errorf("revocation: crl_urls: %w", err)
		}
	}
	if v.MaxSize < 0 || v.CacheSize < 0 || v.Timeout < 0 || v.CacheTTL < 0 || v.CacheMaxAge < 0 || v.RefreshInterval < 0 {
		return errors.New("revocation: limits must not be negative")
	}
	return nil
}

// Cleanup gives the checker back to the pool.
func (v *Verifier) Cleanup() error {
	if v.poolKey != "" {
		_, _ = checkers.Delete(v.poolKey)
	}
	return nil
}

// ErrRevoked is returned (and the handshake refused) for a revoked certificate.
var ErrRevoked = errors.New("client certificate revoked")

// ErrStatusUnknown is returned in fail_mode hard when no source answered.
var ErrStatusUnknown = errors.New("client certificate revocation status unknown")

// VerifyClientCertificate checks every verified chain; an error refuses the handshake.
func (v *Verifier) VerifyClientCertificate(rawCerts [][]byte, verifiedChains [][]*x509.Certificate) error {
	if len(verifiedChains) == 0 {
		// client_auth mode request or require: nothing was verified, so there is no issuer to
		// ask about the certificate.
		st := &CertStatus{Leaf: true, Errors: []error{errors.New("the chain was not verified (client_auth mode request or require), so no issuer is known")}}
		if len(rawCerts) > 0 {
			st.Cert, _ = x509.ParseCertificate(rawCerts[0])
		}
		return v.unknown([]*CertStatus{st})
	}
	timeout := time.Duration(v.Timeout)
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	ctx, cancel := context.WithTimeout(v.ctx, 2*timeout)
	defer cancel()
	res := v.checker.Check(ctx, verifiedChains)
	if st := res.Revoked; st != nil {
		a := st.Answer
		fields := append(certFields(st),
			zap.String("source", a.Kind),
			zap.String("source_location", a.Location),
			zap.Int("reason_code", a.Reason),
			zap.String("reason", ReasonName(a.Reason)))
		if !a.RevokedAt.IsZero() {
			fields = append(fields, zap.Time("revoked_at", a.RevokedAt))
		}
		v.logger.Error("TLS handshake refused: client certificate revoked", fields...)
		return fmt.Errorf("%w: %s (serial %s)", ErrRevoked, subjectOf(st), serialOf(st))
	}
	if len(res.Unknown) > 0 {
		return v.unknown(res.Unknown)
	}
	return nil
}

// unknown applies the fail mode to certificates no source answered for.
func (v *Verifier) unknown(sts []*CertStatus) error {
	soft := v.FailMode == FailSoft
	for _, st := range sts {
		msgs := make([]string, len(st.Errors))
		for i, err := range st.Errors {
			msgs[i] = err.Error()
		}
		fields := append(certFields(st), zap.Strings("errors", msgs))
		if soft {
			v.logger.Warn("client certificate accepted without a revocation status (fail_mode soft)", fields...)
			continue
		}
		v.logger.Error("TLS handshake refused: no revocation status for the client certificate (fail_mode hard)", fields...)
		return fmt.Errorf("%w: %s (serial %s)", ErrStatusUnknown, subjectOf(st), serialOf(st))
	}
	return nil
}

func certFields(st *CertStatus) []zap.Field {
	f := []zap.Field{
		zap.String("subject", subjectOf(st)),
		zap.String("serial", serialOf(st)),
		zap.Bool("leaf", st.Leaf),
	}
	if st.Cert != nil {
		f = append(f, zap.String("issuer", st.Cert.Issuer.String()))
	}
	return f
}

func subjectOf(st *CertStatus) string {
	if st.Cert == nil {
		return "(unparsable certificate)"
	}
	return st.Cert.Subject.String()
}

// serialOf is the serial number in hex, as openssl prints it (without colons).
func serialOf(st *CertStatus) string {
	if st.Cert == nil || st.Cert.SerialNumber == nil {
		return ""
	}
	return hex.EncodeToString(st.Cert.SerialNumber.Bytes())
}

// Interface guards
var (
	_ caddy.Provisioner                  = (*Verifier)(nil)
	_ caddy.Validator                    = (*Verifier)(nil)
	_ caddy.CleanerUpper                 = (*Verifier)(nil)
	_ caddytls.ClientCertificateVerifier = (*Verifier)(nil)
)

// Package keyset is the Caddy-side configuration of JWKS key sources: where a protection's
// verification keys come from (inline, file or URL) and the limits of outbound JWKS fetches.
// Fetchers are shared across modules and `caddy reload` through a caddy.UsagePool keyed by
// their configuration, so a reload keeps its warm caches.
package keyset

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
	"github.com/dcrgate/dcrgate/internal/deprecated"
	"github.com/dcrgate/dcrgate/internal/jose"
	"github.com/dcrgate/dcrgate/internal/jwks"
	"github.com/dcrgate/dcrgate/internal/tlsclient"
)

// Config says where verification keys come from. Exactly one field is set.
type Config struct {
	// JWKS is an inline JSON Web Key Set.
	JWKS json.RawMessage `json:"jwks,omitempty"`
	// File is the path of a JWKS file, read when the config is loaded.
	File string `json:"file,omitempty"`
	// URL is an https JWKS endpoint, fetched and cached under the fetch limits.
	URL string `json:"url,omitempty"`
}

// IsZero reports whether no source is configured.
func (c Config) IsZero() bool { return len(c.JWKS) == 0 && c.File == "" && c.URL == "" }

// Validate checks that exactly one source is set.
func (c Config) Validate() error {
	n := 0
	if len(c.JWKS) > 0 {
		n++
	}
	if c.File != "" {
		n++
	}
	if c.URL != "" {
		n++
	}
	if n != 1 {
		return fmt.Errorf("exactly one of jwks, jwks_file or jwks_url must be set (got %d)", n)
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("jwks_url %q must be an absolute https URL", c.URL)
		}
	}
	return nil
}

// Open returns the key source. Inline and file sets are parsed now, so a broken key set fails
// the config load rather than the first request.
func (c Config) Open(f *jwks.Fetcher) (jose.KeySource, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	switch {
	case len(c.JWKS) > 0:
		set, err := jwks.ParseSet(c.JWKS)
		if err != nil {
			return nil, fmt.Errorf("inline jwks: %w", err)
		}
		return jwks.NewStatic(set), nil
	case c.File != "":
		set, err := jwks.LoadFile(c.File)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		return jwks.NewStatic(set), nil
	default:
		u, _ := url.Parse(c.URL)
		return f.Source(c.URL, []string{u.Host})
	}
}

// UnmarshalCaddyfileKey parses one key-source option at the dispenser's position and reports
// whether it was one. The option is named as the JSON, `keys file|url|jwks <value>` (JSON
// "keys": {"file"|"url"|"jwks": ...}); `jwks_file <path>`, `jwks_url <url>` and `jwks <json>`
// are its shorthands.
func (c *Config) UnmarshalCaddyfileKey(d *caddyfile.Dispenser) (bool, error) {
	var field string
	name := d.Val()
	switch name {
	case "keys":
		if !d.NextArg() {
			return true, d.Errf("keys takes file <path>, url <https url> or jwks <json>")
		}
		field = d.Val()
	case "jwks_file", "jwks_url":
		field = name[len("jwks_"):]
	case "jwks":
		field = "jwks"
	default:
		return false, nil
	}
	if field != "file" && field != "url" && field != "jwks" {
		return true, d.Errf("keys takes file <path>, url <https url> or jwks <json>, not %q", field)
	}
	if !c.IsZero() {
		return true, d.Errf("%s: a key source is already set (use one of keys file|url|jwks, or jwks_file, jwks_url, jwks)", name)
	}
	var v string
	if !d.Args(&v) {
		return true, d.ArgErr()
	}
	if d.NextArg() {
		return true, d.Errf("%s takes one value", name)
	}
	switch field {
	case "jwks":
		if !json.Valid([]byte(v)) {
			return true, d.Errf("jwks: not valid JSON")
		}
		c.JWKS = json.RawMessage(v)
	case "file":
		c.File = v
	case "url":
		c.URL = v
	}
	return true, nil
}

// FetchConfig bounds outbound JWKS fetches.
type FetchConfig struct {
	// Timeout of one fetch, default 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// MaxSize of a JWKS response in bytes, default 256 KiB.
	MaxSize int64 `json:"max_size,omitempty"`
	// RefreshInterval is the least time between two refetches of one URL triggered by an
	// unknown kid or a failing origin, default 1m.
	RefreshInterval caddy.Duration `json:"refresh_interval,omitempty"`
	// CacheTTL is used when the response has no cache headers, default 1h.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`
	// TLS is the TLS client configuration of the fetches (reverse_proxy's names: a
	// tls_trust_pool for the CAs of the JWKS endpoints, ...); default the system roots.
	TLS *tlsclient.Config `json:"tls,omitempty"`
	// TrustedRoots are PEM files of the CAs trusted for JWKS endpoints.
	//
	// Deprecated: use TLS (Caddyfile `tls_trust_pool file <pem>...`).
	TrustedRoots []string `json:"trusted_roots,omitempty"`
}

// tlsConfig is TLS with the deprecated TrustedRoots folded in.
func (fc FetchConfig) tlsConfig() (*tlsclient.Config, error) {
	if len(fc.TrustedRoots) == 0 {
		return fc.TLS, nil
	}
	var t tlsclient.Config
	if fc.TLS != nil {
		t = *fc.TLS
	}
	if err := t.AddTrustedFiles(fc.TrustedRoots...); err != nil {
		return nil, fmt.Errorf("fetch: trusted_roots: %w", err)
	}
	return &t, nil
}

func (fc FetchConfig) fetcherConfig(ctx caddy.Context, t *tlsclient.Config) (jwks.FetcherConfig, error) {
	cfg := jwks.FetcherConfig{
		Timeout:                     time.Duration(fc.Timeout),
		MaxBytes:                    fc.MaxSize,
		RefreshOnUnknownKIDInterval: time.Duration(fc.RefreshInterval),
		DefaultTTL:                  time.Duration(fc.CacheTTL),
	}
	tc, err := t.Make(ctx)
	if err != nil {
		return cfg, fmt.Errorf("fetch: tls: %w", err)
	}
	cfg.TLS = tc
	return cfg, nil
}

// UnmarshalCaddyfile parses a `fetch` block; the dispenser is at `fetch`:
//
//	fetch {
//	    timeout <d>
//	    max_size <size>
//	    refresh_interval <d>
//	    cache_ttl <d>
//	    tls_trust_pool file <pem>...    # and the other tls_* options of reverse_proxy
//	}
//
// `trusted_roots <pem>...` is the deprecated name of `tls_trust_pool file <pem>...`.
func (fc *FetchConfig) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if ok, err := tlsclient.UnmarshalCaddyfileOption(d, &fc.TLS); ok {
			if err != nil {
				return err
			}
			continue
		}
		name := d.Val()
		switch name {
		case "timeout", "refresh_interval", "cache_ttl":
			dur, err := caddyfileargs.Duration(d, false)
			if err != nil {
				return err
			}
			switch name {
			case "timeout":
				fc.Timeout = dur
			case "refresh_interval":
				fc.RefreshInterval = dur
			default:
				fc.CacheTTL = dur
			}
		case "max_size":
			n, err := caddyfileargs.Size(d)
			if err != nil {
				return err
			}
			fc.MaxSize = n
		case "trusted_roots":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			deprecated.Caddyfile(d, "fetch trusted_roots", "tls_trust_pool file <pem>...")
			if fc.TLS == nil {
				fc.TLS = new(tlsclient.Config)
			}
			if err := fc.TLS.AddTrustedFiles(args...); err != nil {
				return d.Err(err.Error())
			}
		default:
			return d.Errf("fetch: unknown option %q", name)
		}
	}
	return nil
}

// fetchers holds one jwks.Fetcher per distinct FetchConfig.
var fetchers = caddy.NewUsagePool()

type pooledFetcher struct{ *jwks.Fetcher }

func (pooledFetcher) Destruct() error { return nil }

// Fetcher is a fetcher shared by every module with the same fetch configuration.
type Fetcher struct {
	*jwks.Fetcher
	key string
}

// Acquire returns the shared fetcher for fc; call Release when the module is cleaned up. The
// pool key covers the contents of the files the TLS configuration reads, so a reload after a
// CA or certificate rotation gets a new fetcher; the deprecated trusted_roots is logged once
// here for JSON configs.
func (fc FetchConfig) Acquire(ctx caddy.Context) (*Fetcher, error) {
	if len(fc.TrustedRoots) > 0 {
		ctx.Logger().Warn("fetch: trusted_roots is deprecated; use tls (Caddyfile: tls_trust_pool file <pem>...)")
	}
	t, err := fc.tlsConfig()
	if err != nil {
		return nil, err
	}
	digest, err := t.Digest()
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	limits := fc
	limits.TLS, limits.TrustedRoots = nil, nil
	b, _ := json.Marshal(limits)
	key := "jwks-fetcher:" + string(b) + ":" + digest
	v, _, err := fetchers.LoadOrNew(key, func() (caddy.Destructor, error) {
		cfg, err := fc.fetcherConfig(ctx, t)
		if err != nil {
			return nil, err
		}
		if cfg.TLS.InsecureSkipVerify {
			ctx.Logger().Warn("fetch: tls_insecure_skip_verify is on: JWKS endpoints are not authenticated")
		}
		return pooledFetcher{jwks.NewFetcher(cfg)}, nil
	})
	if err != nil {
		return nil, err
	}
	return &Fetcher{Fetcher: v.(pooledFetcher).Fetcher, key: key}, nil
}

// Release gives the fetcher back to the pool.
func (f *Fetcher) Release() {
	if f != nil {
		_, _ = fetchers.Delete(f.key)
	}
}

package tlsrevocation

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/dcrgate/dcrgate/internal/caddyfileargs"
	"github.com/dcrgate/dcrgate/internal/tlsclient"
)

// UnmarshalCaddyfile sets up the verifier from Caddyfile tokens. Syntax, inside a `tls`
// directive's `client_auth` block:
//
//	verifier revocation {
//	    fail_mode hard|soft                 # no answer from any source: refuse (default) or accept
//	    ocsp [off]                          # ask the certificates' OCSP responders; default on
//	    crl_distribution_points [off]       # fetch the CRLs the certificates name; default on
//	    crl_files <path>...                 # CRL files (DER or PEM), re-read when they change
//	    crl_urls <url>...                   # CRLs at http(s) URLs, for the certificates of their issuer
//	    timeout <duration>                  # one fetch; default 5s
//	    max_size <size>                     # one CRL or OCSP response; default 4MiB
//	    cache_size <n>                      # cached CRLs and OCSP responses; default 10000
//	    cache_ttl <duration>                # answers without a nextUpdate; default 5m
//	    cache_max_age <duration>            # refetch sooner than the nextUpdate; default unset
//	    refresh_interval <duration>         # retry a failing source; default 30s
//	    tls_trust_pool file <pem>...        # and the other tls_* options of reverse_proxy, for https fetches
//	}
//
// Every option is named as its JSON field; `ocsp on` and `crl_distribution_points on` still
// adapt, with a deprecation warning (the option alone is on). `verifier revocation` alone checks OCSP and the CRL distribution points, in fail_mode hard.
func (v *Verifier) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		if ok, err := tlsclient.UnmarshalCaddyfileOption(d, &v.TLS); ok {
			if err != nil {
				return err
			}
			continue
		}
		switch name := d.Val(); name {
		case "fail_mode":
			if !d.Args(&v.FailMode) || d.NextArg() {
				return d.ArgErr()
			}
			if v.FailMode != FailHard && v.FailMode != FailSoft {
				return d.Errf("revocation: fail_mode must be hard or soft, not %q", v.FailMode)
			}
		case "ocsp", "crl_distribution_points":
			on, err := caddyfileargs.Flag(d, "on")
			if err != nil {
				return err
			}
			if name == "ocsp" {
				v.OCSP = &on
			} else {
				v.CRLDistributionPoints = &on
			}
		case "crl_files", "crl_urls":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			if name == "crl_files" {
				v.CRLFiles = append(v.CRLFiles, args...)
				continue
			}
			for _, u := range args {
				if err := checkURL(u); err != nil {
					return d.Errf("revocation: crl_urls: %v", err)
				}
			}
			v.CRLURLs = append(v.CRLURLs, args...)
		case "timeout", "cache_ttl", "cache_max_age", "refresh_interval":
			dur, err := caddyfileargs.Duration(d, false)
			if err != nil {
				return err
			}
			switch name {
			case "timeout":
				v.Timeout = dur
			case "cache_ttl":
				v.CacheTTL = dur
			case "cache_max_age":
				v.CacheMaxAge = dur
			default:
				v.RefreshInterval = dur
			}
		case "max_size":
			n, err := caddyfileargs.Size(d)
			if err != nil {
				return err
			}
			v.MaxSize = n
		case "cache_size":
			var s string
			if !d.Args(&s) || d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return d.Errf("revocation: cache_size: bad number %q", s)
			}
			v.CacheSize = n
		default:
			return d.Errf("revocation: unknown option %q", name)
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*Verifier)(nil)

package ssa

import (
	"errors"
	"fmt"
	"time"

	"github.com/dcrgate/dcrgate/internal/jose"
)

// Certificate binding modes: how the TLS client certificate must relate to the SSA.
const (
	// BindOrgAndSoftware: the certificate's organisation (OU, or organizationIdentifier) is the
	// SSA's org_id and its CN the software_id. The default.
	BindOrgAndSoftware = "org_and_software"
	// BindOrg: only the organisation must match.
	BindOrg = "org"
	// BindNone: no certificate is needed to present an SSA.
	BindNone = "none"
)

// Defaults of Config.
const (
	DefaultLeeway = 30 * time.Second
)

// ClaimEmbeddedJWKS is the SSA claim of an embedded key set (see Directory.EmbeddedJWKS).
const ClaimEmbeddedJWKS = "software_jwks"

// Bounds of an embedded software_jwks: it is verified against on every request, so it is
// kept to what a TPP needs (the SSA's size is bounded too, by the JWS size limit).
const (
	MaxEmbeddedKeys    = 10
	MaxEmbeddedRSABits = 8192
)

// DefaultAlgorithms are the SSA signature algorithms accepted when none are configured.
func DefaultAlgorithms() []string { return []string{"PS256", "ES256"} }

// Config holds what a deployment trusts. Empty fields take the defaults listed.
type Config struct {
	// Directories are the trusted SSA issuers, matched by the SSA's iss. At least one.
	Directories []Directory
	// Algorithms allowed for the SSA signature; default PS256, ES256. "none" and HS* are
	// refused by Validate.
	Algorithms []string
	// MaxAge refuses SSAs issued longer ago than this (plus Leeway); 0 (the default) is no
	// limit, since directory SSAs are long-lived.
	MaxAge time.Duration
	// Leeway is the clock skew allowed on iat, exp and MaxAge; 0 takes DefaultLeeway.
	Leeway time.Duration
	// CertificateBinding is BindOrgAndSoftware (default), BindOrg or BindNone.
	CertificateBinding string
}

// Directory is one trusted software statement issuer.
type Directory struct {
	// Issuer is the SSA iss of this directory, e.g. "OpenBanking Ltd".
	Issuer string
	// JWKSHosts are the hosts (host or host:port, "*.example.com" for subdomains) the
	// software_jwks_endpoint of this directory's SSAs may use. Required: the gateway fetches
	// those URLs, so they must not point anywhere a TPP likes.
	JWKSHosts []string
	// SoftwareModes, when set, restricts software_mode for this directory's SSAs. Deprecated:
	// which software modes are accepted is a business rule of the registration policy
	// (data.dcr.config.software_modes, see docs/policies.md); empty (the default) leaves it to
	// the policy.
	SoftwareModes []string
	// EmbeddedJWKS lets this directory's SSAs carry the software's keys as software_jwks
	// instead of a software_jwks_endpoint. Off by default: OB directory SSAs name an endpoint.
	EmbeddedJWKS bool
	// Keys verify the directory's SSA signatures. The caller opens them (a file, a URL, an
	// inline set); New requires them.
	Keys jose.KeySource
}

// SetDefaults fills every empty field with its default. It never changes a set value.
func (c *Config) SetDefaults() {
	if len(c.Algorithms) == 0 {
		c.Algorithms = DefaultAlgorithms()
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.CertificateBinding == "" {
		c.CertificateBinding = BindOrgAndSoftware
	}
}

// Validate reports a configuration that could not work or would weaken the rules. It checks c
// as SetDefaults would complete it, without changing c. Keys are not checked (a caller may
// validate before it opens them); New checks them.
func (c *Config) Validate() error {
	d := *c
	d.SetDefaults()
	if len(d.Directories) == 0 {
		return errors.New("at least one directory is required")
	}
	seen := map[string]bool{}
	for _, dir := range d.Directories {
		if dir.Issuer == "" {
			return errors.New("a directory has no issuer")
		}
		if seen[dir.Issuer] {
			return fmt.Errorf("directory %q is configured twice", dir.Issuer)
		}
		seen[dir.Issuer] = true
		if len(dir.JWKSHosts) == 0 {
			return fmt.Errorf("directory %q: jwks_hosts is required (the hosts its software_jwks_endpoints may use)", dir.Issuer)
		}
		for _, h := range dir.JWKSHosts {
			if h == "" {
				return fmt.Errorf("directory %q: jwks_hosts has an empty entry", dir.Issuer)
			}
		}
		for _, m := range dir.SoftwareModes {
			if m == "" {
				return fmt.Errorf("directory %q: software_modes has an empty entry", dir.Issuer)
			}
		}
	}
	if _, err := jose.ParseAlgs(d.Algorithms); err != nil {
		return fmt.Errorf("algorithms: %w", err)
	}
	if d.MaxAge < 0 {
		return fmt.Errorf("max_age %s is negative", d.MaxAge)
	}
	if d.Leeway < 0 {
		return fmt.Errorf("leeway %s is negative", d.Leeway)
	}
	switch d.CertificateBinding {
	case BindOrgAndSoftware, BindOrg, BindNone:
	default:
		return fmt.Errorf("certificate_binding %q: want %s, %s or %s", d.CertificateBinding, BindOrgAndSoftware, BindOrg, BindNone)
	}
	return nil
}

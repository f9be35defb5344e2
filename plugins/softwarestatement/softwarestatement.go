// Package softwarestatement is the dcr.protections.software_statement protection: the
// registration request must carry a software statement (SSA) signed by a trusted directory.
package softwarestatement

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/ssa"
	"github.com/dcrgate/dcrgate/internal/keyset"
)

func init() {
	caddy.RegisterModule(SoftwareStatement{})
}

// Certificate binding modes: how the TLS client certificate must relate to the SSA (see
// package dcr/ssa).
const (
	BindOrgAndSoftware = ssa.BindOrgAndSoftware
	BindOrg            = ssa.BindOrg
	BindNone           = ssa.BindNone
)

// SoftwareStatement verifies the `software_statement` claim of the registration request
// against the trusted directories and checks its OB claims. It is the Caddy adapter of
// package dcr/ssa, which owns every rule: this module reads the Caddy config, opens each
// directory's keys (files, URLs through the shared fetcher, inline sets) and calls the core.
type SoftwareStatement struct {
	// Directories are the trusted SSA issuers, matched by the SSA's `iss`.
	Directories []Directory `json:"directories"`
	// Algorithms allowed for the SSA signature; default PS256, ES256.
	Algorithms []string `json:"algorithms,omitempty"`
	// MaxAge rejects SSAs issued longer ago than this; 0 (default) = no limit, since directory
	// SSAs are long-lived.
	MaxAge caddy.Duration `json:"max_age,omitempty"`
	// Leeway for clock skew on iat/exp; default 30s.
	Leeway caddy.Duration `json:"leeway,omitempty"`
	// CertificateBinding is how the TLS client certificate must match the SSA:
	// org_and_software (default: OU/organizationIdentifier = org_id and CN = software_id),
	// org, or none.
	CertificateBinding string `json:"certificate_binding,omitempty"`
	// Fetch bounds the fetches of directory JWKS URLs.
	Fetch keyset.FetchConfig `json:"fetch,omitzero"`

	verifier *ssa.Verifier
	fetcher  *keyset.Fetcher
	logger   *zap.Logger
}

// Directory is one trusted software statement issuer.
type Directory struct {
	// Issuer is the SSA `iss` of this directory, e.g. "OpenBanking Ltd".
	Issuer string `json:"issuer"`
	// Keys verify the directory's SSA signatures.
	Keys keyset.Config `json:"keys"`
	// JWKSHosts are the hosts (host or host:port, `*.example.com` for subdomains) that the
	// `software_jwks_endpoint` of this directory's SSAs may use. Required: the gateway fetches
	// those URLs, so they must not point anywhere a TPP likes.
	JWKSHosts []string `json:"jwks_hosts"`
	// SoftwareModes, when set, restricts `software_mode` for this directory. Deprecated: the
	// accepted software modes are a rule of the registration policy
	// (data.dcr.config.software_modes, docs/policies.md); unset, the policy alone decides.
	SoftwareModes []string `json:"software_modes,omitempty"`
	// EmbeddedJWKS lets this directory's SSAs carry the software's keys as `software_jwks`
	// instead of naming a `software_jwks_endpoint` (bounded: at most 10 keys, RSA up to 8192
	// bits; the request's algorithm allow-list and the revoked key sets still apply). Default
	// off: OB directory SSAs name an endpoint.
	EmbeddedJWKS bool `json:"embedded_jwks,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (SoftwareStatement) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.protections.software_statement",
		New: func() caddy.Module { return new(SoftwareStatement) },
	}
}

// Provision opens the directories' keys and builds the core verifier.
func (s *SoftwareStatement) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	cfg := s.coreConfig()
	cfg.SetDefaults()
	s.Algorithms = cfg.Algorithms
	s.Leeway = caddy.Duration(cfg.Leeway)
	s.CertificateBinding = cfg.CertificateBinding
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("software_statement: %w", err)
	}
	var err error
	if s.fetcher, err = s.Fetch.Acquire(ctx); err != nil {
		return fmt.Errorf("software_statement: fetch: %w", err)
	}
	for i := range s.Directories {
		d := &s.Directories[i]
		if len(d.SoftwareModes) > 0 {
			s.logger.Warn("software_modes is deprecated: which software modes may register is a rule of the registration policy (data.dcr.config.software_modes, docs/policies.md); this directory still refuses the modes it does not list",
				zap.String("directory", d.Issuer), zap.Strings("software_modes", d.SoftwareModes))
		}
		if cfg.Directories[i].Keys, err = d.Keys.Open(s.fetcher.Fetcher); err != nil {
			return fmt.Errorf("software_statement: directory %q: %w", d.Issuer, err)
		}
	}
	if s.verifier, err = ssa.New(cfg); err != nil {
		return fmt.Errorf("software_statement: %w", err)
	}
	return nil
}

// coreConfig is the module's configuration as dcr/ssa takes it (without keys).
func (s *SoftwareStatement) coreConfig() ssa.Config {
	cfg := ssa.Config{
		Algorithms:         s.Algorithms,
		MaxAge:             time.Duration(s.MaxAge),
		Leeway:             time.Duration(s.Leeway),
		CertificateBinding: s.CertificateBinding,
		Directories:        make([]ssa.Directory, len(s.Directories)),
	}
	for i, d := range s.Directories {
		cfg.Directories[i] = ssa.Directory{Issuer: d.Issuer, JWKSHosts: d.JWKSHosts, SoftwareModes: d.SoftwareModes, EmbeddedJWKS: d.EmbeddedJWKS}
	}
	return cfg
}

// Validate checks the configuration.
func (s *SoftwareStatement) Validate() error {
	cfg := s.coreConfig()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("software_statement: %w", err)
	}
	return nil
}

// Cleanup releases the shared fetcher.
func (s *SoftwareStatement) Cleanup() error {
	s.fetcher.Release()
	return nil
}

// Phase is verify_statement: the SSA is what the request's keys and iss are checked against.
func (s *SoftwareStatement) Phase() dcr.Phase { return dcr.PhaseVerifyStatement }

// Protect verifies the SSA on register and update; read and delete carry none.
func (s *SoftwareStatement) Protect(ctx context.Context, x *dcr.Exchange, _ dcr.Registry) (dcr.Result, error) {
	if x.Operation != dcr.OpRegister && x.Operation != dcr.OpUpdate {
		return dcr.Result{}, nil
	}
	verified, derr := s.verifier.Verify(ctx, ssa.Input{RequestClaims: x.UnverifiedClaims, ClientCert: x.ClientCert, Now: x.Now})
	if derr != nil {
		return dcr.Result{}, derr
	}
	return dcr.Result{SoftwareStatement: verified}, nil
}

// Interface guards
var (
	_ caddy.Provisioner  = (*SoftwareStatement)(nil)
	_ caddy.Validator    = (*SoftwareStatement)(nil)
	_ caddy.CleanerUpper = (*SoftwareStatement)(nil)
	_ dcr.Protection     = (*SoftwareStatement)(nil)
)

// Package softwarestatement is the dcr.protections.software_statement protection: the
// registration request must carry a software statement (SSA) signed by a trusted directory.
package softwarestatement

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jose"
	"github.com/dcrgate/dcrgate/internal/jwks"
	"github.com/dcrgate/dcrgate/internal/keyset"
)

func init() {
	caddy.RegisterModule(SoftwareStatement{})
}

// Certificate binding modes: how the TLS client certificate must relate to the SSA.
const (
	BindOrgAndSoftware = "org_and_software"
	BindOrg            = "org"
	BindNone           = "none"
)

// SoftwareStatement verifies the `software_statement` claim of the registration request
// against the trusted directories and checks its OB claims.
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

	algs    []jwa.SignatureAlgorithm
	byIss   map[string]*Directory
	fetcher *keyset.Fetcher
	logger  *zap.Logger
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
	// SoftwareModes accepted (`software_mode`); default ["Live"].
	SoftwareModes []string `json:"software_modes,omitempty"`

	keys jose.KeySource
}

// CaddyModule returns the Caddy module information.
func (SoftwareStatement) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.protections.software_statement",
		New: func() caddy.Module { return new(SoftwareStatement) },
	}
}

// Provision loads the directories' keys.
func (s *SoftwareStatement) Provision(ctx caddy.Context) error {
	s.logger = ctx.Logger()
	if len(s.Algorithms) == 0 {
		s.Algorithms = []string{"PS256", "ES256"}
	}
	if s.Leeway == 0 {
		s.Leeway = caddy.Duration(30 * time.Second)
	}
	if s.CertificateBinding == "" {
		s.CertificateBinding = BindOrgAndSoftware
	}
	algs, err := jose.ParseAlgs(s.Algorithms)
	if err != nil {
		return fmt.Errorf("software_statement: algorithms: %w", err)
	}
	s.algs = algs
	if s.fetcher, err = s.Fetch.Acquire(ctx); err != nil {
		return fmt.Errorf("software_statement: fetch: %w", err)
	}
	s.byIss = make(map[string]*Directory, len(s.Directories))
	for i := range s.Directories {
		d := &s.Directories[i]
		if len(d.SoftwareModes) == 0 {
			d.SoftwareModes = []string{"Live"}
		}
		if d.keys, err = d.Keys.Open(s.fetcher.Fetcher); err != nil {
			return fmt.Errorf("software_statement: directory %q: %w", d.Issuer, err)
		}
		s.byIss[d.Issuer] = d
	}
	return nil
}

// Validate checks the configuration.
func (s *SoftwareStatement) Validate() error {
	if len(s.Directories) == 0 {
		return errors.New("software_statement: at least one directory is required")
	}
	seen := map[string]bool{}
	for _, d := range s.Directories {
		if d.Issuer == "" {
			return errors.New("software_statement: a directory has no issuer")
		}
		if seen[d.Issuer] {
			return fmt.Errorf("software_statement: directory %q is configured twice", d.Issuer)
		}
		seen[d.Issuer] = true
		if len(d.JWKSHosts) == 0 {
			return fmt.Errorf("software_statement: directory %q: jwks_hosts is required (the hosts its software_jwks_endpoints may use)", d.Issuer)
		}
	}
	switch s.CertificateBinding {
	case BindOrgAndSoftware, BindOrg, BindNone:
	default:
		return fmt.Errorf("software_statement: certificate_binding %q: want org_and_software, org or none", s.CertificateBinding)
	}
	return nil
}

// Cleanup releases the shared fetcher.
func (s *SoftwareStatement) Cleanup() error {
	s.fetcher.Release()
	return nil
}

// Protect verifies the SSA on register and update; read and delete carry none.
func (s *SoftwareStatement) Protect(ctx context.Context, x *dcr.Exchange) error {
	if x.Operation != dcr.OpRegister && x.Operation != dcr.OpUpdate {
		return nil
	}
	raw, ok := x.UnverifiedClaims["software_statement"].(string)
	if !ok || raw == "" {
		if _, present := x.UnverifiedClaims["software_statement"]; present {
			return dcr.BadSoftwareStatement("software_statement must be a compact JWS string")
		}
		return dcr.BadSoftwareStatement("software_statement is required")
	}
	parsed, err := jose.Parse([]byte(raw))
	if err != nil {
		return dcr.BadSoftwareStatement("software_statement is not a well-formed compact JWS: %v", err)
	}
	iss, _, err := jose.StringClaim(parsed.Claims(), "iss")
	if err != nil || iss == "" {
		return dcr.BadSoftwareStatement("software_statement has no iss")
	}
	d, ok := s.byIss[iss]
	if !ok {
		return dcr.UnapprovedSoftwareStatement("software_statement issuer %q is not a trusted directory", iss)
	}
	_, claims, err := parsed.Verify(ctx, s.algs, d.keys)
	if err != nil {
		if errors.Is(err, jose.ErrKeyUnavailable) {
			return dcr.Unavailable(err, "the keys of directory %q cannot be fetched", iss)
		}
		return dcr.BadSoftwareStatement("software_statement signature is not valid: %v", err)
	}
	ssa, derr := s.checkClaims(d, raw, claims, x.Now)
	if derr != nil {
		return derr
	}
	if derr := s.checkBinding(ssa, x); derr != nil {
		return derr
	}
	x.SoftwareStatement = ssa
	return nil
}

// checkClaims applies the OB rules on SSA claims.
func (s *SoftwareStatement) checkClaims(d *Directory, raw string, claims map[string]any, now time.Time) (*dcr.SoftwareStatement, *dcr.Error) {
	leeway := time.Duration(s.Leeway)
	iat, ok, err := jose.NumericDate(claims, "iat")
	if err != nil || !ok {
		return nil, dcr.BadSoftwareStatement("software_statement iat is required and must be a NumericDate")
	}
	if iat.After(now.Add(leeway)) {
		return nil, dcr.BadSoftwareStatement("software_statement iat is in the future")
	}
	if s.MaxAge > 0 && iat.Before(now.Add(-time.Duration(s.MaxAge)-leeway)) {
		return nil, dcr.BadSoftwareStatement("software_statement was issued more than %s ago", time.Duration(s.MaxAge))
	}
	if exp, ok, err := jose.NumericDate(claims, "exp"); err != nil {
		return nil, dcr.BadSoftwareStatement("software_statement exp must be a NumericDate")
	} else if ok && !now.Before(exp.Add(leeway)) {
		return nil, dcr.BadSoftwareStatement("software_statement has expired")
	}
	str := func(name string) (string, *dcr.Error) {
		v, ok, err := jose.StringClaim(claims, name)
		if err != nil || !ok || v == "" {
			return "", dcr.BadSoftwareStatement("software_statement claim %s is required and must be a non-empty string", name)
		}
		return v, nil
	}
	ssa := &dcr.SoftwareStatement{Raw: raw, Claims: claims, Directory: d.Issuer, AllowedHosts: d.JWKSHosts}
	var derr *dcr.Error
	if ssa.SoftwareID, derr = str("software_id"); derr != nil {
		return nil, derr
	}
	if ssa.OrgID, derr = str("org_id"); derr != nil {
		return nil, derr
	}
	roles, ok, err := jose.StringsClaim(claims, "software_roles")
	if err != nil || !ok || len(roles) == 0 {
		return nil, dcr.BadSoftwareStatement("software_statement claim software_roles is required and must be a non-empty array of strings")
	}
	ssa.Roles = roles
	if uris, ok, err := jose.StringsClaim(claims, "software_redirect_uris"); err != nil {
		return nil, dcr.BadSoftwareStatement("software_statement claim software_redirect_uris must be an array of strings")
	} else if ok {
		ssa.RedirectURIs = uris
	}
	if ssa.JWKSURI, derr = str("software_jwks_endpoint"); derr != nil {
		return nil, derr
	}
	if err := jwks.CheckURL(ssa.JWKSURI, d.JWKSHosts); err != nil {
		return nil, dcr.BadSoftwareStatement("software_jwks_endpoint is not allowed for directory %q: %v", d.Issuer, err)
	}
	status, derr := str("org_status")
	if derr != nil {
		return nil, derr
	}
	if status != "Active" {
		return nil, dcr.UnapprovedSoftwareStatement("org_status is %q; only Active organisations may register", status)
	}
	mode, derr := str("software_mode")
	if derr != nil {
		return nil, derr
	}
	if !slices.Contains(d.SoftwareModes, mode) {
		return nil, dcr.UnapprovedSoftwareStatement("software_mode %q is not accepted here (accepted: %s)", mode, strings.Join(d.SoftwareModes, ", "))
	}
	return ssa, nil
}

// checkBinding makes sure the SSA belongs to the software presenting the TLS certificate, so a
// TPP cannot register with another TPP's (public) software statement.
func (s *SoftwareStatement) checkBinding(ssa *dcr.SoftwareStatement, x *dcr.Exchange) *dcr.Error {
	if s.CertificateBinding == BindNone {
		return nil
	}
	if x.ClientCert == nil {
		return dcr.BadSoftwareStatement("a TLS client certificate is required to present a software statement")
	}
	org, sw := dcr.CertificateIdentity(x.ClientCert)
	if org != ssa.OrgID {
		return dcr.BadSoftwareStatement("the software statement's org_id %q does not match the TLS client certificate (%q)", ssa.OrgID, org)
	}
	if s.CertificateBinding == BindOrgAndSoftware && sw != ssa.SoftwareID {
		return dcr.BadSoftwareStatement("the software statement's software_id %q does not match the TLS client certificate (%q)", ssa.SoftwareID, sw)
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner  = (*SoftwareStatement)(nil)
	_ caddy.Validator    = (*SoftwareStatement)(nil)
	_ caddy.CleanerUpper = (*SoftwareStatement)(nil)
	_ dcr.Protection     = (*SoftwareStatement)(nil)
)

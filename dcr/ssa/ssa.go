// Package ssa applies the Open Banking UK Dynamic Client Registration v3.2 rules on the
// software statement (SSA) a registration request carries: it must be a compact JWS from a
// trusted directory, signed with that directory's keys in an allowed algorithm, with the OB
// claims well formed, and it must belong to the software presenting the TLS client
// certificate. The package knows nothing of Caddy: a caller (plugins/softwarestatement) opens
// each directory's keys as a jose.KeySource and hands the request's facts to Verify.
//
// Verify runs, in this order, each stage a named function with its own error:
//
//	ReadStatement     the request's software_statement claim is a non-empty string
//	ParseStatement    it is a well-formed compact JWS
//	FindDirectory     its iss names a configured directory (else unapproved_software_statement)
//	VerifySignature   the directory's keys verify it, in one of Config.Algorithms
//	Rules             each OB claim rule, in table order (see Rules)
//
// Every rejection is a 400 *dcr.Error (invalid_software_statement, or
// unapproved_software_statement for an issuer that is not trusted or a software_mode a
// directory refuses); keys that cannot be fetched are a 503, since the SSA may be fine.
//
// Who owns which rule: this package owns the spec rules (signature, the claims' presence and
// types, the times, the JWKS endpoint's hosts, the certificate binding). Whether an
// organisation's org_status or a software_mode is acceptable is a business rule owned by the
// registration policy (policies/org_status.rego, policies/software_mode.rego, defaults in
// policies/data.json): here both claims must only be present strings. Directory.SoftwareModes
// is the deprecated per-directory restriction, applied only when configured.
package ssa

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jose"
)

// Claim is the name of the registration request claim that carries the SSA.
const Claim = "software_statement"

// Input is what Verify checks an SSA against.
type Input struct {
	// RequestClaims are the registration request's claims, decoded without verifying them
	// (the SSA inside is what the request's keys come from); Verify reads Claim.
	RequestClaims map[string]any
	// ClientCert is the TLS client certificate, nil if none was presented.
	ClientCert *x509.Certificate
	// Now is the time of the request.
	Now time.Time
}

// Verifier verifies SSAs with a validated Config. It is safe for concurrent use.
type Verifier struct {
	cfg   Config
	algs  []jwa.SignatureAlgorithm
	byIss map[string]*Directory
}

// New completes cfg with its defaults, validates it and requires every directory's Keys.
func New(cfg Config) (*Verifier, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	algs, err := jose.ParseAlgs(cfg.Algorithms)
	if err != nil {
		return nil, fmt.Errorf("algorithms: %w", err)
	}
	v := &Verifier{cfg: cfg, algs: algs, byIss: make(map[string]*Directory, len(cfg.Directories))}
	v.cfg.Directories = make([]Directory, len(cfg.Directories))
	copy(v.cfg.Directories, cfg.Directories)
	for i := range v.cfg.Directories {
		d := &v.cfg.Directories[i]
		if d.Keys == nil {
			return nil, fmt.Errorf("directory %q has no keys", d.Issuer)
		}
		v.byIss[d.Issuer] = d
	}
	return v, nil
}

// Config returns the configuration in force, defaults filled.
func (v *Verifier) Config() Config { return v.cfg }

// Verify applies every stage and rule to the SSA of in and returns it verified. Nothing is
// returned unless every check passed.
func (v *Verifier) Verify(ctx context.Context, in Input) (*dcr.SoftwareStatement, *dcr.Error) {
	raw, derr := ReadStatement(in.RequestClaims)
	if derr != nil {
		return nil, derr
	}
	parsed, derr := ParseStatement(raw)
	if derr != nil {
		return nil, derr
	}
	d, derr := v.FindDirectory(parsed)
	if derr != nil {
		return nil, derr
	}
	claims, derr := v.VerifySignature(ctx, parsed, d)
	if derr != nil {
		return nil, derr
	}
	st := Statement{Claims: claims, Directory: d, Now: in.Now, ClientCert: in.ClientCert}
	out := &dcr.SoftwareStatement{Raw: raw, Claims: claims, Directory: d.Issuer, AllowedHosts: d.JWKSHosts}
	for _, r := range Rules {
		if derr := r.Check(&v.cfg, st, out); derr != nil {
			return nil, derr
		}
	}
	return out, nil
}

// ReadStatement: the request must carry software_statement, as a non-empty string.
func ReadStatement(requestClaims map[string]any) (string, *dcr.Error) {
	v, present := requestClaims[Claim]
	if !present {
		return "", dcr.BadSoftwareStatement("software_statement is required")
	}
	raw, ok := v.(string)
	if !ok || raw == "" {
		return "", dcr.BadSoftwareStatement("software_statement must be a compact JWS string")
	}
	return raw, nil
}

// ParseStatement: the SSA must be a well-formed compact JWS (strict JSON, size-limited; see
// package jose). Its claims are not trusted until VerifySignature.
func ParseStatement(raw string) (*jose.Parsed, *dcr.Error) {
	parsed, err := jose.Parse([]byte(raw))
	if err != nil {
		return nil, dcr.BadSoftwareStatement("software_statement is not a well-formed compact JWS: %v", err)
	}
	return parsed, nil
}

// FindDirectory: the SSA's (unverified) iss must name a configured directory, whose keys then
// verify it. A missing iss is invalid; an unknown one is unapproved.
func (v *Verifier) FindDirectory(parsed *jose.Parsed) (*Directory, *dcr.Error) {
	iss, _, err := jose.StringClaim(parsed.Claims(), "iss")
	if err != nil || iss == "" {
		return nil, dcr.BadSoftwareStatement("software_statement has no iss")
	}
	d, ok := v.byIss[iss]
	if !ok {
		return nil, dcr.UnapprovedSoftwareStatement("software_statement issuer %q is not a trusted directory", clip(iss))
	}
	return d, nil
}

// VerifySignature: the SSA must verify with the directory's keys (by kid, never keys the
// token carries) in one of the configured algorithms. Keys that cannot be fetched are a 503.
func (v *Verifier) VerifySignature(ctx context.Context, parsed *jose.Parsed, d *Directory) (map[string]any, *dcr.Error) {
	_, claims, err := parsed.Verify(ctx, v.algs, d.Keys)
	if err != nil {
		if errors.Is(err, jose.ErrKeyUnavailable) {
			return nil, dcr.Unavailable(err, "the keys of directory %q cannot be fetched", d.Issuer)
		}
		return nil, dcr.BadSoftwareStatement("software_statement signature is not valid: %v", err)
	}
	return claims, nil
}

// clip shortens a client-supplied value for an error description.
func clip(s string) string {
	const limit = 128
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

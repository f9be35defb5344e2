package policy

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"github.com/dcrgate/dcrgate/dcr"
)

// maskedHeaders never reach a policy (or a log) in clear: they carry credentials.
var maskedHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// Masked replaces a credential in the input.
const Masked = "[masked]"

// Input builds the policy input of docs/policies.md from what the pipeline verified. Nothing
// in it is a secret: the software statement appears as its verified claims, headers that carry
// credentials are masked, the stored registration comes without its hashes. count is
// registrations_for_software (see CountRegistrations).
func Input(x *dcr.Exchange, count int) map[string]any {
	return inputFor(x, count, everything)
}

// inputFor is Input with only the members reads says a policy set can read (input.denied,
// which needs the store, is added by the caller).
func inputFor(x *dcr.Exchange, count int, reads inputReads) map[string]any {
	in := make(map[string]any, 14)
	in["operation"] = string(x.Operation)
	if reads.Reads("now") {
		in["now"] = x.Now.Unix()
	}
	if reads.Reads("registrations_for_software") {
		in["registrations_for_software"] = count
	}
	if x.ClientID != "" && reads.Reads("client_id") {
		in["client_id"] = x.ClientID
	}
	if x.Request != nil && reads.Reads("request") {
		in["request"] = requestInput(x.Request)
	}
	if x.ClientCert != nil && reads.Reads("client_certificate") {
		in["client_certificate"] = CertificateInput(x.ClientCert)
	}
	if x.RequestClaims != nil && reads.Reads("registration_request") {
		rr := make(map[string]any, len(x.RequestClaims))
		for k, v := range x.RequestClaims {
			if k != "software_statement" {
				rr[k] = v
			}
		}
		in["registration_request"] = rr
	}
	if x.SoftwareStatement != nil && reads.Reads("software_statement") {
		in["software_statement"] = map[string]any{
			"claims":    x.SoftwareStatement.Claims,
			"directory": x.SoftwareStatement.Directory,
		}
	}
	if x.Metadata != nil && reads.Reads("metadata") {
		in["metadata"] = x.Metadata
	}
	if x.AccessTokenClaims != nil && reads.Reads("access_token") {
		in["access_token"] = map[string]any{"claims": x.AccessTokenClaims}
	}
	if x.Existing != nil && reads.Reads("existing_registration") {
		in["existing_registration"] = registrationInput(x.Existing)
	}
	if reads.Reads("revocation") {
		in["revocation"] = RevocationInput(x.SigningKey)
	}
	return in
}

// RevocationInput is input.revocation: what the gateway checked of the request-signing key
// against the SSA's revoked key sets (checked is false when no set was read: the SSA names
// none, the call is a read or delete, or every set was unavailable under soft fail). A
// revoked key never reaches the policy, so revoked is always false here; unavailable says a
// set could not be fetched and the call went on under fail_mode soft. Transport certificates
// are not in it: the revocation verifier decides at the TLS handshake, and nothing of its
// answer crosses into the request (a certificate the handler sees was not found revoked).
func RevocationInput(k *dcr.SigningKey) map[string]any {
	sk := map[string]any{"checked": false, "revoked": false, "sources": []any{}, "unavailable": false, "unavailable_sources": []any{}}
	if k != nil {
		sk["checked"] = k.Revocation.Checked
		sk["sources"] = anyList(k.Revocation.Sources)
		sk["fail_mode"] = k.Revocation.FailMode
		sk["unavailable"] = len(k.Revocation.Unavailable) > 0
		sk["unavailable_sources"] = anyList(k.Revocation.Unavailable)
		sk["kid"] = k.KeyID
		sk["thumbprint"] = k.Thumbprint
	}
	return map[string]any{"signing_key": sk}
}

func requestInput(r *http.Request) map[string]any {
	headers := make(map[string]any, len(r.Header))
	for name, values := range r.Header {
		v := strings.Join(values, ", ")
		if slices.Contains(maskedHeaders, name) {
			v = maskCredential(v)
		}
		headers[strings.ToLower(name)] = v
	}
	return map[string]any{
		"method":         r.Method,
		"path":           r.URL.Path,
		"host":           r.Host,
		"headers":        headers,
		"remote_address": r.RemoteAddr,
	}
}

// maskCredential keeps an Authorization scheme (Bearer, Basic) and hides the credential.
func maskCredential(v string) string {
	if scheme, _, ok := strings.Cut(v, " "); ok && !strings.ContainsAny(scheme, "=;") {
		return scheme + " " + Masked
	}
	return Masked
}

// CertificateInput describes a TLS client certificate for a policy.
func CertificateInput(c *x509.Certificate) map[string]any {
	orgID, softwareID := dcr.CertificateIdentity(c)
	var uris, ips []any
	for _, u := range c.URIs {
		uris = append(uris, u.String())
	}
	for _, ip := range c.IPAddresses {
		ips = append(ips, ip.String())
	}
	return map[string]any{
		"subject":                 c.Subject.String(),
		"issuer":                  c.Issuer.String(),
		"subject_fields":          nameInput(c.Subject.CommonName, c.Subject.OrganizationalUnit, c.Subject.Organization, c.Subject.Country),
		"organization_identifier": dcr.OrganizationIdentifier(c),
		"org_id":                  orgID,
		"software_id":             softwareID,
		"serial_number":           hex.EncodeToString(c.SerialNumber.Bytes()),
		"sans": map[string]any{
			"dns":   anyList(c.DNSNames),
			"email": anyList(c.EmailAddresses),
			"uri":   orEmpty(uris),
			"ip":    orEmpty(ips),
		},
		"sha256_thumbprint": dcr.CertificateThumbprint(c),
		"not_before":        c.NotBefore.Unix(),
		"not_after":         c.NotAfter.Unix(),
	}
}

func nameInput(cn string, ou, o, country []string) map[string]any {
	return map[string]any{
		"common_name":         cn,
		"organizational_unit": anyList(ou),
		"organization":        anyList(o),
		"country":             anyList(country),
	}
}

// registrationInput is the stored registration without its secrets (the token and client
// secret hashes) and without the compact software statement (its claims are there).
func registrationInput(r *dcr.Registration) map[string]any {
	return map[string]any{
		"client_id":       r.ClientID,
		"version":         r.Version,
		"software_id":     r.SoftwareID,
		"org_id":          r.OrgID,
		"metadata":        r.Metadata,
		"ssa_claims":      r.SSAClaims,
		"directory":       r.Directory,
		"cert_subject":    r.CertSubject,
		"cert_thumbprint": r.CertThumbprint,
		"issued_at":       r.IssuedAt.Unix(),
		"updated_at":      r.UpdatedAt.Unix(),
	}
}

// CountRegistrations is registrations_for_software: the live registrations of the request's
// software_id other than the one the request acts on. On register that is all of them (so
// "at most N" is count < N); on update, read and delete the existing registration is left out
// (so an update never counts against a limit on itself).
func CountRegistrations(ctx context.Context, x *dcr.Exchange, reg dcr.Registry) (int, error) {
	softwareID := ""
	switch {
	case x.SoftwareStatement != nil:
		softwareID = x.SoftwareStatement.SoftwareID
	case x.Existing != nil:
		softwareID = x.Existing.SoftwareID
	}
	if softwareID == "" || reg == nil {
		return 0, nil
	}
	except := ""
	if x.Existing != nil {
		except = x.Existing.ClientID
	}
	return reg.CountBySoftware(ctx, softwareID, except)
}

// DeniedInput is input.denied: what the operators' deny list (admin.api.dcr strike-offs)
// says about the call's org_id and software_id, {"org": bool, "software": bool, "reason"}.
func DeniedInput(ctx context.Context, x *dcr.Exchange, reg dcr.Registry) (map[string]any, error) {
	var org, software string
	switch {
	case x.SoftwareStatement != nil:
		org, software = x.SoftwareStatement.OrgID, x.SoftwareStatement.SoftwareID
	case x.Existing != nil:
		org, software = x.Existing.OrgID, x.Existing.SoftwareID
	}
	var d dcr.Denial
	if reg != nil && (org != "" || software != "") {
		var err error
		if d, err = reg.Denied(ctx, org, software); err != nil {
			return nil, err
		}
	}
	return map[string]any{"org": d.Org, "software": d.Software, "reason": d.Reason}, nil
}

func anyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func orEmpty(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

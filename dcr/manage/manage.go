// Package manage holds the rules of RFC 7592 client management (read, update and delete of
// a registration) in OB DCR v3.2: who may make a management call, and what an update may
// not change. Each rule is one named function; the Caddy modules (the dcr handler,
// plugins/mtls, plugins/accesstoken) only feed them.
//
// Authorization is decided by one rule, Authorize, over the votes of the authenticate
// phase: a call is authorized iff the client exists, no vote refuses it and at least one
// grants it. The registration access token of the client is a grant (RegistrationTokenStep);
// a client-credentials token of the client itself is a grant where Methods accept it
// (plugins/accesstoken), which also refuses a registration access token where Methods
// exclude it; a TLS client certificate of another organisation or software is a refusal
// (CertificateOwner, plugins/mtls). Every refusal answers the same dcr.NotAuthorized, whatever
// the reason and whether or not the client exists; the reason goes to the audit log.
package manage

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/secret"
)

// Audit reasons of Authorize when no step refused the call.
const (
	ReasonUnknownClient = "no live registration has this client_id (never registered, or deleted)"
	ReasonNoToken       = "no access token was sent"
	ReasonNotTheToken   = "the access token is not the registration access token of this client_id"
)

// Authorize decides a read/update/delete from the votes of the authenticate phase: it is
// authorized iff existing is a registration, no vote refuses and at least one grants. The
// refusal is dcr.NotAuthorized with the real reason for the audit log: an unknown client
// first (whatever else is wrong, that is what the call ran into), then the first refusal in
// the order the steps ran, then the missing or unrecognised token.
func Authorize(existing *dcr.Registration, bearerToken string, votes []dcr.Vote) *dcr.Error {
	if existing == nil {
		return dcr.NotAuthorized(ReasonUnknownClient)
	}
	granted := false
	for _, v := range votes {
		if v.Refusal != "" {
			return dcr.NotAuthorized(v.Refusal)
		}
		granted = granted || v.Grant
	}
	switch {
	case granted:
		return nil
	case bearerToken == "":
		return dcr.NotAuthorized(ReasonNoToken)
	default:
		return dcr.NotAuthorized(ReasonNotTheToken)
	}
}

// RegistrationToken reports whether token is the RFC 7592 registration access token of rec,
// compared in constant time with the stored hash.
func RegistrationToken(token string, rec *dcr.Registration) bool {
	return rec != nil && secret.Matches(token, rec.RegistrationTokenHash)
}

// RegistrationTokenStep is the built-in first step of the authenticate phase: it grants a
// management call made with the client's registration access token.
type RegistrationTokenStep struct{}

// Phase is authenticate.
func (RegistrationTokenStep) Phase() dcr.Phase { return dcr.PhaseAuthenticate }

// Protect grants the call when the bearer token is the registration access token.
func (RegistrationTokenStep) Protect(_ context.Context, x *dcr.Exchange, _ dcr.Registry) (dcr.Result, error) {
	if x.Operation == dcr.OpRegister || !RegistrationToken(x.BearerToken, x.Existing) {
		return dcr.Result{}, nil
	}
	return dcr.Result{Vote: dcr.Grant()}, nil
}

// ClientCredentialsToken checks a verified client-credentials token of a management call
// against the registration: client (the client the token was issued to; "" when it names
// none) is the registration's client_id, and a certificate-bound token is bound to the
// caller's certificate (CertificateBound). The error is the refusal reason.
func ClientCredentialsToken(client string, claims map[string]any, rec *dcr.Registration, cert *x509.Certificate) error {
	switch {
	case client == "":
		return errors.New("the client-credentials token names no client")
	case subtle.ConstantTimeCompare([]byte(client), []byte(rec.ClientID)) != 1:
		return errors.New("the client-credentials token was issued to another client")
	case !CertificateBound(claims, cert):
		return errors.New("the client-credentials token is bound to another certificate than the caller's (RFC 8705 §3)")
	}
	return nil
}

// CertificateBound reports whether a token may be used on this call as far as its
// confirmation claim (RFC 7800 cnf) goes: a token without one is a bearer token; a
// certificate-bound one (RFC 8705 §3, cnf.x5t#S256) only over a connection with that TLS
// client certificate. A confirmation the gateway cannot check (e.g. a DPoP key, jkt) or a
// malformed one fails closed.
func CertificateBound(claims map[string]any, cert *x509.Certificate) bool {
	v, present := claims["cnf"]
	if !present {
		return true
	}
	cnf, ok := v.(map[string]any)
	if !ok || len(cnf) != 1 {
		return false
	}
	want, ok := cnf["x5t#S256"].(string)
	if !ok || cert == nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(dcr.CertificateThumbprint(cert)), []byte(want)) == 1
}

// CertificateOwner checks that the caller's TLS client certificate identifies the
// organisation and software of the registration (OU or organizationIdentifier = org_id,
// CN = software_id; see dcr.CertificateIdentity). The error is the refusal reason.
func CertificateOwner(cert *x509.Certificate, rec *dcr.Registration) error {
	if cert == nil {
		return errors.New("no TLS client certificate was presented")
	}
	org, sw := dcr.CertificateIdentity(cert)
	if org != rec.OrgID || sw != rec.SoftwareID {
		return fmt.Errorf("the TLS client certificate is of org_id %q, software_id %q, not of the registration's", org, sw)
	}
	return nil
}

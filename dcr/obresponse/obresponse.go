// Package obresponse builds the answer to a successful registration, read or update: the
// Open Banking UK DCR v3.2 response shape (OBIE DCR v3.2 "OBClientRegistration1" response,
// RFC 7591 §3.2.1, RFC 7592 §2.1). It is free of Caddy: the handler calls Build with the
// registration the registrar stored and writes the result as JSON.
//
// The shape, one function per rule:
//
//   - FlattenSSA: the claims of the software statement are top-level attributes of the
//     answer, except the claims about the SSA as a token (iss, iat, exp, nbf, jti, aud).
//   - the registered metadata, which wins over an SSA claim of the same name (it is what
//     the gateway accepted for this client).
//   - UnderSentNames: a claim the client sent under another name (an OB DCR v3.1 client's
//     tls_client_auth_dn, registered as tls_client_auth_subject_dn) answers under the
//     name(s) it was sent under, on 201, on PUT and on every later GET.
//   - ServerAssigned attributes last, so that neither the metadata nor an SSA claim can
//     change them: software_statement, client_id, client_id_issued_at,
//     registration_client_uri and, on creation only, the one-time credentials.
package obresponse

import (
	"github.com/dcrgate/dcrgate/dcr"
)

// ServerAssigned are the attributes of a registration response that the registry sets and a
// client never does: RFC 7591 §3.2.1's client_id, client_secret, client_id_issued_at and
// client_secret_expires_at, RFC 7592 §3's registration_access_token and
// registration_client_uri, and the software_statement, which the answer takes from the
// verified SSA. They are removed from client metadata before it is registered, and from a
// backend's answer before its metadata is compared or kept.
var ServerAssigned = []string{
	"client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at",
	"registration_access_token", "registration_client_uri", "software_statement",
}

// ssaTokenClaims are claims about the SSA as a token, not about the software; they are not
// flattened into the answer.
var ssaTokenClaims = map[string]bool{"iss": true, "iat": true, "exp": true, "nbf": true, "jti": true, "aud": true}

// Build returns the answer for the stored registration rec. creds are the one-time
// credentials of a creation (registration_access_token, and client_secret with
// client_secret_expires_at for client_secret_* methods); nil on read and update.
// endpointURL is the public registration endpoint, without a trailing slash:
// registration_client_uri is endpointURL/client_id. rec is not modified.
func Build(rec *dcr.Registration, creds map[string]any, endpointURL string) map[string]any {
	out := make(map[string]any, len(rec.Metadata)+len(rec.SSAClaims)+len(ServerAssigned))
	FlattenSSA(out, rec.SSAClaims)
	for k, v := range rec.Metadata {
		out[k] = v
	}
	UnderSentNames(out, rec.Metadata, rec.MetadataNames)
	out["software_statement"] = rec.SoftwareStatement
	out["client_id"] = rec.ClientID
	out["client_id_issued_at"] = rec.IssuedAt.Unix()
	out["registration_client_uri"] = endpointURL + "/" + rec.ClientID
	for k, v := range creds {
		out[k] = v
	}
	return out
}

// FlattenSSA copies the SSA claims into out as top-level attributes, without the claims
// about the SSA as a token (iss, iat, exp, nbf, jti, aud).
func FlattenSSA(out, ssaClaims map[string]any) {
	for k, v := range ssaClaims {
		if !ssaTokenClaims[k] {
			out[k] = v
		}
	}
}

// UnderSentNames moves each registered claim of metadata that the client sent under other
// names (names, as dcr.Registration.MetadataNames: registered name → sent names) to those
// names in out. A claim sent under both names answers under both; a name whose claim is not
// registered, or that has no sent names, is left as it is.
func UnderSentNames(out, metadata map[string]any, names map[string][]string) {
	for name, sent := range names {
		v, ok := metadata[name]
		if !ok || len(sent) == 0 {
			continue
		}
		delete(out, name)
		for _, n := range sent {
			out[n] = v
		}
	}
}

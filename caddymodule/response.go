package caddymodule

import (
	"encoding/json"
	"net/http"

	"github.com/dcrgate/dcrgate/dcr"
)

// ssaEnvelopeClaims are claims about the SSA as a token, not about the software; they are not
// flattened into the registration response.
var ssaEnvelopeClaims = map[string]bool{"iss": true, "iat": true, "exp": true, "nbf": true, "jti": true, "aud": true}

// registrationResponse is the OB DCR v3.2 response shape: the registered metadata, the SSA
// claims flattened as top-level attributes (registered metadata wins on a clash), the
// software_statement, and the RFC 7591/7592 attributes: client_id, client_id_issued_at,
// registration_client_uri and, on creation only, the one-time credentials. A claim the client
// sent under another name (rec.MetadataNames: tls_client_auth_dn, the OB DCR v3.1 name of
// tls_client_auth_subject_dn) answers under the name it was sent under.
func registrationResponse(rec *dcr.Registration, creds map[string]any, endpointURL string) map[string]any {
	out := make(map[string]any, len(rec.Metadata)+len(rec.SSAClaims)+8)
	for k, v := range rec.SSAClaims {
		if !ssaEnvelopeClaims[k] {
			out[k] = v
		}
	}
	for k, v := range rec.Metadata {
		out[k] = v
	}
	// Each claim answers under the name(s) the client sent it under.
	for name, sent := range rec.MetadataNames {
		v, ok := rec.Metadata[name]
		if !ok || len(sent) == 0 {
			continue
		}
		delete(out, name)
		for _, n := range sent {
			out[n] = v
		}
	}
	out["software_statement"] = rec.SoftwareStatement
	out["client_id"] = rec.ClientID
	out["client_id_issued_at"] = rec.IssuedAt.Unix()
	out["registration_client_uri"] = endpointURL + "/" + rec.ClientID
	for k, v := range creds {
		out[k] = v
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, body map[string]any) {
	w.Header().Set("Cache-Control", "no-store")
	if body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

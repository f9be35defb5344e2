package upstream

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/obresponse"
)

// certificateBound is the RFC 8705 §3.4 client metadata that asks for access tokens bound to
// the client's TLS certificate.
const certificateBound = "tls_client_certificate_bound_access_tokens"

// acceptedMetadata is the registration the TPP sees: the metadata the OB profile and the
// policy accepted, without envelope claims and without server-assigned attributes (those are
// the gateway's to present). It is never the translation for the backend nor the backend's
// answer, which a backend fills with defaults and its own fields.
func acceptedMetadata(metadata map[string]any) map[string]any {
	return clientMetadata(metadata, 0)
}

// clientMetadata is a copy of metadata with room for extra entries, without the JWS
// envelope claims and the server-assigned attributes, which are never client metadata.
func clientMetadata(metadata map[string]any, extra int) map[string]any {
	md := make(map[string]any, len(metadata)+extra)
	for k, v := range metadata {
		md[k] = v
	}
	for _, k := range dcr.EnvelopeClaims {
		delete(md, k)
	}
	for _, k := range obresponse.ServerAssigned {
		delete(md, k)
	}
	return md
}

// bindCertificates asks the backend for certificate-bound access tokens (RFC 8705 §3) unless
// the client's metadata already says whether it wants them: every OB client calls the token
// endpoint over mutual TLS, and FAPI requires sender-constrained tokens. A backend that does
// not know the metadata ignores it (RFC 7591 §2).
func bindCertificates(md map[string]any) {
	if _, set := md[certificateBound]; !set {
		md[certificateBound] = true
	}
}

// divergent names the metadata the gateway sent that the backend's answer changed, and the
// metadata it dropped (values compared as JSON). RFC 7591 §2 lets a server ignore metadata it
// does not understand; a changed value means the backend registered something other than what
// the TPP was told.
func divergent(sent, answer map[string]any) (changed, dropped []string) {
	for k, v := range sent {
		if k == "client_id" || k == "software_statement" {
			continue
		}
		got, ok := answer[k]
		switch {
		case !ok:
			dropped = append(dropped, k)
		case !sameJSON(v, got):
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	sort.Strings(dropped)
	return changed, dropped
}

func sameJSON(a, b any) bool {
	x, errA := json.Marshal(a)
	y, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(x) == string(y)
}

// backendRequest turns the checked OB registration into a plain RFC 7591 (clientID == "") or
// RFC 7592 update request for a backend that knows nothing of Open Banking.
func backendRequest(x *dcr.Exchange, clientID string, forwardSSA bool) map[string]any {
	md := backendMetadata(x.AcceptedMetadata, clientID)
	// The software's keys are the SSA's software_jwks_endpoint: the backend needs them to
	// verify private_key_jwt client assertions and signed request objects.
	if _, hasURI := md["jwks_uri"]; !hasURI && md["jwks"] == nil && x.SoftwareStatement != nil && x.SoftwareStatement.JWKSURI != "" {
		md["jwks_uri"] = x.SoftwareStatement.JWKSURI
	}
	if forwardSSA && x.SoftwareStatement != nil {
		md["software_statement"] = x.SoftwareStatement.Raw
	}
	return md
}

// backendMetadata is metadata as the backend must see it: no envelope claims and no
// server-assigned attributes; the RFC 7591 defaults that would widen what the OB profile
// decided spelled out.
func backendMetadata(metadata map[string]any, clientID string) map[string]any {
	md := clientMetadata(metadata, 2)
	grants := stringList(md["grant_types"])
	responses := stringList(md["response_types"])
	if _, ok := md["response_types"]; !ok {
		// RFC 7591 §2: omitted response_types means "code"; the OB profile omits them only for
		// clients without the authorization_code grant, which must get none.
		md["response_types"] = []any{}
	}
	// RFC 7591 §2.1: a response type that returns an ID token or access token from the
	// authorization endpoint ("code id_token") goes with the implicit grant. OB hybrid clients
	// do not list it; a backend that checks the correspondence needs it.
	if needsImplicit(responses) && grants != nil && !slices.Contains(grants, "implicit") {
		md["grant_types"] = append(toAny(grants), "implicit")
	}
	if clientID != "" {
		md["client_id"] = clientID // RFC 7592 §2.2: the update request carries the client_id
	}
	return md
}

func needsImplicit(responseTypes []string) bool {
	for _, rt := range responseTypes {
		for _, part := range strings.Fields(rt) {
			if part == "id_token" || part == "token" {
				return true
			}
		}
	}
	return false
}

// stringList reads a JSON array of strings (nil if v is not one).
func stringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return l
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			s, ok := e.(string)
			if !ok {
				return nil
			}
			out = append(out, s)
		}
		return out
	}
	return nil
}

func toAny(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

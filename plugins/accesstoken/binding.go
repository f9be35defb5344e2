package accesstoken

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
)

// boundToCaller reports whether a token may be used on this call as far as its confirmation
// claim (RFC 7800 cnf) goes: a token without one is a bearer token; a certificate-bound one
// (RFC 8705 §3, cnf.x5t#S256) only over a connection with that TLS client certificate. A
// confirmation the gateway cannot check (e.g. a DPoP key, jkt) or a malformed one fails closed.
func boundToCaller(claims map[string]any, cert *x509.Certificate) bool {
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
	sum := sha256.Sum256(cert.Raw)
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

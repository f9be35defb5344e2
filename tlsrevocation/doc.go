// Package tlsrevocation is the tls.client_auth.verifier.revocation Caddy module: it refuses a
// TLS handshake whose client certificate (or an intermediate CA certificate of its chain) has
// been revoked, for every connection the TLS layer accepts, not only DCR calls.
//
// For each certificate of every chain that crypto/tls verified against the client_auth trust
// pool (the leaf, then each intermediate, with the certificate above it as its issuer), the
// status comes from the first source that gives an answer, in this order:
//
//  1. the configured CRLs (crl_files, crl_urls) whose issuer is the certificate's issuer;
//  2. the OCSP responders of the certificate's Authority Information Access extension;
//  3. the CRLs of its CRL Distribution Points extension.
//
// CRLs and OCSP responses must be signed by the issuer (OCSP also by a responder the issuer
// delegated with the OCSPSigning extended key usage), and are cached until their nextUpdate
// (at most cache_max_age when that is set; cache_ttl when they have none). Fetches are
// http/https only, bounded in time and size, shared by concurrent handshakes (one fetch per
// URL at a time) and follow at most three redirects, none to another scheme.
//
// When no source can answer for a certificate, fail_mode decides: hard (the default) refuses
// the handshake, soft accepts it with a warning. A leaf that names no source at all (and for
// whose issuer no CRL is configured) has no answer either; an intermediate that names none is
// not checked, since offline roots often publish no revocation information for the CAs they
// sign.
package tlsrevocation

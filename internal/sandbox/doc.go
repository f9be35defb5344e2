// Package sandbox builds an Open Banking UK–like trust setup on disk: a directory root and
// issuing CA, a directory signing key, a TLS server certificate for the gateway and any number
// of TPPs, each with a transport (mTLS) certificate, signing keys, a public JWKS and a software
// statement (SSA) signed by the directory. It is what the example Caddyfile, the `caddy dcr`
// commands and the end-to-end tests use instead of the real OB directory.
//
// # Layout
//
// Everything lives under Options.Dir. Private keys are written 0600, everything else 0644.
// Keys are PKCS#8 PEM ("PRIVATE KEY") so that both crypto/tls and jwk.ParseKey read them.
//
//	sandbox.json                  manifest: directory issuer and kid, host, base URL
//	ca/root.pem                   directory root CA (self-signed; its key is not kept)
//	ca/issuing.pem, issuing.key   issuing CA, signed by the root; signs every leaf below
//	ca/bundle.pem                 root + issuing: the pool Caddy's client_auth trusts, and the
//	                              roots the gateway uses for the sandbox HTTPS JWKS endpoint
//	server/cert.pem, key.pem      gateway TLS leaf + issuing chain; SANs localhost, 127.0.0.1,
//	                              ::1 and Options.Host
//	directory/signing.key         directory SSA signing key (RSA 2048, PS256)
//	directory/jwks.json           its public JWKS (kid, use sig, alg PS256)
//	jwks/<software_id>.json       a TPP's software JWKS: PS256 and ES256 signing keys (use sig)
//	                              and the transport key (use tls, x5c, x5t#S256), served at
//	                              {BaseURL}/sandbox/jwks/<software_id>.json (software_jwks_endpoint)
//	jwks/<org_id>.org.json        the org JWKS (same keys), org_jwks_endpoint
//	jwks/*.revoked.json           revoked-key sets for the *_revoked_endpoint claims: JWK Sets of
//	                              the revoked keys (empty until `sandbox revoke --signing-key`)
//	crl/issuing.crl               the issuing CA's CRL (DER, signed with ca/issuing.key), served
//	                              at {BaseURL}/sandbox/crl/issuing.crl: the CRL distribution
//	                              point of every transport certificate (`sandbox revoke
//	                              --transport-cert` adds to it)
//	tpps/<n>/                     one TPP, n from 1:
//	  transport.pem, transport.key  mTLS leaf + issuing chain, subject
//	                                C=GB, O=OpenBanking, OU=<org_id>, CN=<software_id>; its CRL
//	                                distribution point is the CRL above, and with
//	                                Options.OCSPURL its AIA names that OCSP responder
//	  signing.key                   RSA 2048 request signing key (PS256)
//	  signing-ec.key                P-256 request signing key (ES256)
//	  ssa.jwt                       the SSA, PS256 with the directory key
//	  tpp.json                      the TPP record (ids, kids, URLs, file names)
//
// In memory (Sandbox.Files, TPP file fields) every path is absolute. On disk, the manifest and
// tpp.json hold paths relative to the sandbox directory, so a sandbox can be moved or mounted
// elsewhere (e.g. into a container) and still Load.
//
// X.509 keys (CAs, server, transport) are ECDSA P-256: generation is fast, and nothing in DCR
// depends on the transport key type (the gateway binds clients by subject DN and thumbprint).
// JWS signing keys follow the OB profile: RSA for PS256, P-256 for ES256.
package sandbox

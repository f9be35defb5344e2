// Package conformance is an Open Banking UK DCR client written from the OB Dynamic Client
// Registration v3.2/v3.3 specification and modelled on Open Banking's own conformance tool
// (OpenBankingUK/conformance-dcr v1.3.1), and the test that runs the tool's scenarios
// (DCR-001 to DCR-011) against the documented upstream deployment: examples/Caddyfile.upstream
// run by the real binary in front of the example OpenID provider.
//
// # Why a second client
//
// The gateway's own TPP client (internal/tppclient) was written alongside the gateway and shares
// its assumptions: which claims to send, which algorithm to pick, what a response looks like. A
// bank runs Open Banking's tool, which knows none of them. This package therefore knows only
// what a TPP knows:
//
//   - the ASPSP's discovery URL (/.well-known/openid-configuration);
//   - the TPP's files: the transport certificate and key, a signing key and its kid, the
//     software statement (SSA), and the CA bundle that roots the ASPSP's TLS certificate.
//
// Everything else comes from discovery, as the tool takes it: the registration and token
// endpoints, the token endpoint auth method (tls_client_auth or private_key_jwt, whichever the
// caller asks for, refused when not advertised), request_object_signing_alg (the first of
// request_object_signing_alg_values_supported, "none" when the field is missing) and the
// response types (code and code id_token as far as response_types_supported lists them).
// Software id and redirect URIs are read from the TPP's own SSA.
//
// It imports nothing of the gateway: JWS signing is done here with the standard library, the
// response is checked against the OB DCR data dictionary by CheckRegistration, and errors are
// read as RFC 7591 JSON. Only the tests use internal/gatewaytest and internal/sandbox, as the
// harness that builds the binary, starts the processes and makes the TPP's files.
//
// # Scenarios
//
// The tests name each scenario as the tool does (subtests DCR-001 ... DCR-011; the tool has no
// DCR-006) and run them for spec 3.2 and 3.3 in both auth modes:
//
//	DCR-001  discovery names an https registration_endpoint
//	DCR-002  register (201, response schema), client-credentials token, delete (204)
//	DCR-003  register, token, delete, read the deleted client (401)
//	DCR-004  refused with 400 invalid_client_metadata for the reason: expired exp; iss
//	         "foo.is/invalid", "" and 30 characters (not the software_id); signed RS256.
//	         A valid registration still works afterwards
//	DCR-005  register, token, read (200, response schema), delete
//	DCR-007  register, read with an invalid token (401), token, delete
//	DCR-008  register, token, update (200, response schema), delete
//	DCR-009  register, token, delete, update the deleted client (401)
//	DCR-010  register, token, delete, read the deleted client (401)
//	DCR-011  response_types ["id_token","token"] refused (400, for that reason)
//
// Beyond the tool, FAPI-cert-bound checks that the client-credentials token is bound to the
// TPP's transport certificate (RFC 8705: cnf.x5t#S256 in the introspection answer) and is
// refused over another TPP's connection.
package conformance

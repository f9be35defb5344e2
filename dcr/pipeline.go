package dcr

import "context"

// Protection is one check of the pipeline (dcr.protections.*). It returns an *Error to reject;
// any other error is treated as the service being unavailable (503).
type Protection interface {
	Protect(ctx context.Context, x *Exchange) error
}

// Registrar turns a fully checked exchange into a stored registration (dcr.registrars.*):
// local (dcrgate is the registry) or upstream (the client is provisioned in a backend).
type Registrar interface {
	// Register creates the registration. It returns the stored record and the one-time
	// credentials to add to the response (client_secret, registration_access_token).
	Register(ctx context.Context, x *Exchange) (*Registration, map[string]any, error)
	// Update replaces x.Existing with x.Metadata / x.SoftwareStatement.
	Update(ctx context.Context, x *Exchange) (*Registration, map[string]any, error)
	// Delete removes x.Existing.
	Delete(ctx context.Context, x *Exchange) error
}

// Envelope claims of the signed registration request: they are about the JWS, not the client,
// and are never registered.
var EnvelopeClaims = []string{"iss", "aud", "iat", "exp", "nbf", "jti", "software_statement"}

package manage

import (
	"fmt"
	"slices"

	"github.com/dcrgate/dcrgate/dcr"
)

// Methods of authenticating a management call.
const (
	// MethodRegistrationToken is the RFC 7592 registration access token issued with the client.
	MethodRegistrationToken = "registration_token"
	// MethodClientCredentials is an authorization-server token of the client itself, obtained
	// through the client credentials grant (OB DCR v3.2).
	MethodClientCredentials = "client_credentials"
)

// Methods says, per operation (read, update, delete), which methods authenticate it. An
// operation not listed accepts the registration access token only.
type Methods map[string][]string

// Validate checks the operations and method names.
func (m Methods) Validate() error {
	for op, methods := range m {
		if !slices.Contains([]string{string(dcr.OpRead), string(dcr.OpUpdate), string(dcr.OpDelete)}, op) {
			return fmt.Errorf("manage: unknown operation %q (read, update, delete)", op)
		}
		if len(methods) == 0 {
			return fmt.Errorf("manage %s: name at least one of %s, %s", op, MethodRegistrationToken, MethodClientCredentials)
		}
		for _, method := range methods {
			if method != MethodRegistrationToken && method != MethodClientCredentials {
				return fmt.Errorf("manage %s: unknown token kind %q (%s or %s)", op, method, MethodRegistrationToken, MethodClientCredentials)
			}
		}
	}
	return nil
}

// Accepts reports whether op is authenticated by method.
func (m Methods) Accepts(op dcr.Operation, method string) bool {
	methods, ok := m[string(op)]
	if !ok {
		return method == MethodRegistrationToken
	}
	return slices.Contains(methods, method)
}

// AcceptsClientCredentials reports whether any operation accepts client-credentials tokens.
func (m Methods) AcceptsClientCredentials() bool {
	for _, methods := range m {
		if slices.Contains(methods, MethodClientCredentials) {
			return true
		}
	}
	return false
}

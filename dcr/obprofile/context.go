package obprofile

import "context"

// ContextKey is the key under which the dcr handler gives the guest modules it provisions
// its effective profile (a *Config, defaults filled): the registration policy reads it there
// and shows it to Rego as data.dcrgate.profile, so the mapping of roles to scopes has one home
// (this package) and a policy author can still read it.
var ContextKey = contextKey{}

type contextKey struct{}

// FromContext returns the profile a dcr handler put in ctx under ContextKey, or nil.
func FromContext(ctx context.Context) *Config {
	cfg, _ := ctx.Value(ContextKey).(*Config)
	return cfg
}

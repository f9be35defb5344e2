// Package local is the dcr.registrars.local registrar: dcrgate itself is the client registry.
// It issues the client_id, the RFC 7592 registration access token and, for client_secret_*
// methods, the client secret, and keeps the registration in the configured store.
package local

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/google/uuid"

	"github.com/dcrgate/dcrgate/dcr"
)

func init() {
	caddy.RegisterModule(Local{})
}

// maxCASRetries bounds how often an update or delete re-reads a record that changed under it.
const maxCASRetries = 8

// Local keeps registrations in the gateway's own store.
type Local struct{}

// CaddyModule returns the Caddy module information.
func (Local) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.registrars.local",
		New: func() caddy.Module { return new(Local) },
	}
}

// Register creates the registration with fresh credentials.
func (Local) Register(ctx context.Context, x *dcr.Exchange) (*dcr.Registration, map[string]any, error) {
	token, err := NewToken()
	if err != nil {
		return nil, nil, err
	}
	creds := map[string]any{"registration_access_token": token}
	rec := &dcr.Registration{
		ClientID:              uuid.NewString(),
		SoftwareID:            x.SoftwareStatement.SoftwareID,
		OrgID:                 x.SoftwareStatement.OrgID,
		Metadata:              x.Metadata,
		SoftwareStatement:     x.SoftwareStatement.Raw,
		SSAClaims:             x.SoftwareStatement.Claims,
		Directory:             x.SoftwareStatement.Directory,
		RegistrationTokenHash: HashSecret(token),
		IssuedAt:              x.Now.UTC(),
		UpdatedAt:             x.Now.UTC(),
	}
	if x.ClientCert != nil {
		rec.CertSubject = x.ClientCert.Subject.String()
		rec.CertThumbprint = dcr.CertificateThumbprint(x.ClientCert)
	}
	if needsSecret(x.Metadata) {
		secret, err := NewClientSecret()
		if err != nil {
			return nil, nil, err
		}
		rec.ClientSecretHash = HashSecret(secret)
		creds["client_secret"] = secret
		creds["client_secret_expires_at"] = 0
	}
	if err := x.Store.Create(ctx, rec); err != nil {
		return nil, nil, fmt.Errorf("storing registration: %w", err)
	}
	return rec, creds, nil
}

// Update replaces the registered metadata and software statement. A PUT is a full
// replacement, so when the record changed concurrently it is re-read and the replacement
// applied to the newer version (the binding to software and org is checked again).
func (Local) Update(ctx context.Context, x *dcr.Exchange) (*dcr.Registration, map[string]any, error) {
	rec, err := dcr.UpdateLatest(ctx, x.Store, x.Existing, maxCASRetries, func(rec *dcr.Registration) {
		rec.Metadata = x.Metadata
		rec.SoftwareStatement = x.SoftwareStatement.Raw
		rec.SSAClaims = x.SoftwareStatement.Claims
		rec.Directory = x.SoftwareStatement.Directory
		rec.UpdatedAt = x.Now.UTC()
	})
	if err != nil {
		return nil, nil, err
	}
	return rec, nil, nil
}

// Delete tombstones the registration.
func (Local) Delete(ctx context.Context, x *dcr.Exchange) error {
	return dcr.TombstoneLatest(ctx, x.Store, x.Existing, maxCASRetries)
}

// UnmarshalCaddyfile sets up the registrar. Syntax, inside `dcr`: `registrar local`.
func (l *Local) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

func needsSecret(md map[string]any) bool {
	m, _ := md["token_endpoint_auth_method"].(string)
	return strings.HasPrefix(m, "client_secret_")
}

// NewToken returns a registration access token: 256 random bits, base64url.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewClientSecret returns a 36-character base62 secret (about 214 bits), the OB maximum length.
func NewClientSecret() (string, error) {
	var sb strings.Builder
	max := big.NewInt(int64(len(base62)))
	for range 36 {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		sb.WriteByte(base62[n.Int64()])
	}
	return sb.String(), nil
}

// HashSecret is how tokens and secrets are stored: hex SHA-256. The inputs carry 200+ random
// bits, so a fast unsalted hash is enough; comparisons use subtle.ConstantTimeCompare.
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Interface guards
var (
	_ dcr.Registrar         = (*Local)(nil)
	_ caddyfile.Unmarshaler = (*Local)(nil)
)

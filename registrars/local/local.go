// Package local is the dcr.registrars.local registrar: dcrgate itself is the client registry.
// It issues the client_id, the RFC 7592 registration access token and, for client_secret_*
// methods, the client secret, and keeps the registration in the configured store.
package local

import (
	"context"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/google/uuid"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/secret"
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

// Register creates the registration with fresh credentials, and the commit with it in one
// store write. The local registrar needs no backend.
func (Local) Register(ctx context.Context, x *dcr.Exchange, c dcr.Commit, store dcr.Store, _ dcr.Backend) (*dcr.Registration, map[string]any, error) {
	token, err := secret.NewToken()
	if err != nil {
		return nil, nil, err
	}
	creds := map[string]any{"registration_access_token": token}
	rec := &dcr.Registration{
		ClientID:              uuid.NewString(),
		SoftwareID:            x.SoftwareStatement.SoftwareID,
		OrgID:                 x.SoftwareStatement.OrgID,
		Metadata:              x.AcceptedMetadata,
		MetadataNames:         x.MetadataNames,
		SoftwareStatement:     x.SoftwareStatement.Raw,
		SSAClaims:             x.SoftwareStatement.Claims,
		Directory:             x.SoftwareStatement.Directory,
		SigningKey:            x.SigningKey.Registered(),
		RegistrationTokenHash: secret.Hash(token),
		IssuedAt:              x.Now.UTC(),
		UpdatedAt:             x.Now.UTC(),
	}
	if x.ClientCert != nil {
		rec.CertSubject = x.ClientCert.Subject.String()
		rec.CertThumbprint = dcr.CertificateThumbprint(x.ClientCert)
	}
	if needsSecret(x.AcceptedMetadata) {
		clientSecret, err := secret.NewClientSecret()
		if err != nil {
			return nil, nil, err
		}
		rec.ClientSecretHash = secret.Hash(clientSecret)
		creds["client_secret"] = clientSecret
		creds["client_secret_expires_at"] = 0
	}
	if err := store.Create(ctx, rec, c); err != nil {
		return nil, nil, fmt.Errorf("storing registration: %w", err)
	}
	return rec, creds, nil
}

// Update replaces the registered metadata and software statement. A PUT is a full
// replacement, so when the record changed concurrently it is re-read and the replacement
// applied to the newer version (the binding to software and org is checked again), with the
// commit.
func (Local) Update(ctx context.Context, x *dcr.Exchange, c dcr.Commit, store dcr.Store, _ dcr.Backend) (*dcr.Registration, map[string]any, error) {
	rec, err := dcr.UpdateLatest(ctx, store, x.Existing, maxCASRetries, c, func(rec *dcr.Registration) {
		rec.Metadata = x.AcceptedMetadata
		// A PUT replaces the registration, the names the client used included.
		rec.MetadataNames = x.MetadataNames
		rec.SoftwareStatement = x.SoftwareStatement.Raw
		rec.SSAClaims = x.SoftwareStatement.Claims
		rec.Directory = x.SoftwareStatement.Directory
		rec.SigningKey = x.SigningKey.Registered()
		rec.UpdatedAt = x.Now.UTC()
	})
	if err != nil {
		return nil, nil, err
	}
	return rec, nil, nil
}

// Delete tombstones the registration, with the commit.
func (Local) Delete(ctx context.Context, x *dcr.Exchange, c dcr.Commit, store dcr.Store, _ dcr.Backend) error {
	return dcr.TombstoneLatest(ctx, store, x.Existing, maxCASRetries, c)
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

// Interface guards
var (
	_ dcr.Registrar         = (*Local)(nil)
	_ caddyfile.Unmarshaler = (*Local)(nil)
)

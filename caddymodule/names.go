package caddymodule

import (
	"context"

	"github.com/dcrgate/dcrgate/dcr"
)

// namingStore is the store a registrar writes a register or update through: it stamps each
// record with the names the client sent its metadata under (dcr.Registration.MetadataNames,
// e.g. an OB DCR v3.1 client's tls_client_auth_dn). How the client named a claim is the
// handler's concern (dcr/obresponse.UnderSentNames answers in the client's own vocabulary, on
// 201, PUT and every later GET); the registrars store and translate the one registered name
// and need not know.
type namingStore struct {
	dcr.Store
	names map[string][]string
}

func (s namingStore) Create(ctx context.Context, rec *dcr.Registration) error {
	rec.MetadataNames = s.names
	return s.Store.Create(ctx, rec)
}

// Update stamps the names of this request: a PUT replaces the registration, names included.
func (s namingStore) Update(ctx context.Context, rec *dcr.Registration) error {
	rec.MetadataNames = s.names
	return s.Store.Update(ctx, rec)
}

// Interface guards
var _ dcr.Store = namingStore{}

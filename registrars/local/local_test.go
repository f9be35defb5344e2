package local

import (
	"context"
	"errors"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/google/uuid"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/secret"
	"github.com/dcrgate/dcrgate/storage/caddystorage"
)

// call is an exchange as the handler gives it to the registrar, with the store.
type call struct {
	*dcr.Exchange
	Commit dcr.Commit
	Store  dcr.Store
}

func (c *call) register(ctx context.Context, r dcr.Registrar) (*dcr.Registration, map[string]any, error) {
	return r.Register(ctx, c.Exchange, c.Commit, c.Store, nil)
}

func (c *call) update(ctx context.Context, r dcr.Registrar) (*dcr.Registration, map[string]any, error) {
	return r.Update(ctx, c.Exchange, c.Commit, c.Store, nil)
}

func (c *call) delete(ctx context.Context, r dcr.Registrar) error {
	return r.Delete(ctx, c.Exchange, c.Commit, c.Store, nil)
}

func newExchange(t *testing.T, method string) *call {
	t.Helper()
	return &call{Store: caddystorage.New(&certmagic.FileStorage{Path: t.TempDir()}, "dcr"), Exchange: &dcr.Exchange{
		Operation:        dcr.OpRegister,
		Now:              time.Now(),
		AcceptedMetadata: map[string]any{"token_endpoint_auth_method": method, "scope": "openid accounts"},
		MetadataNames:    map[string][]string{"tls_client_auth_subject_dn": {"tls_client_auth_dn"}},
		SoftwareStatement: &dcr.SoftwareStatement{Raw: "a.b.c", SoftwareID: "sw1", OrgID: "org1",
			Claims: map[string]any{"software_id": "sw1"}, Directory: "OpenBanking Ltd"},
	}}
}

func TestRegister(t *testing.T) {
	x := newExchange(t, "tls_client_auth")
	rec, creds, err := x.register(context.Background(), Local{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(rec.ClientID); err != nil || uuid.MustParse(rec.ClientID).Version() != 4 {
		t.Fatalf("client_id %q is not a UUID v4", rec.ClientID)
	}
	token, _ := creds["registration_access_token"].(string)
	if len(token) < 40 || rec.RegistrationTokenHash != secret.Hash(token) || rec.RegistrationTokenHash == token {
		t.Fatalf("token %q stored as %q", token, rec.RegistrationTokenHash)
	}
	if _, ok := creds["client_secret"]; ok || rec.ClientSecretHash != "" {
		t.Fatal("no client_secret for tls_client_auth")
	}
	stored, err := x.Store.Get(context.Background(), rec.ClientID)
	if err != nil || stored.SoftwareID != "sw1" || stored.OrgID != "org1" || stored.Version != 1 {
		t.Fatalf("stored %+v %v", stored, err)
	}
	// The names the client sent its metadata under are part of the registration.
	if !reflect.DeepEqual(stored.MetadataNames, x.MetadataNames) || !reflect.DeepEqual(rec.MetadataNames, x.MetadataNames) {
		t.Fatalf("metadata names stored %v, returned %v, want %v", stored.MetadataNames, rec.MetadataNames, x.MetadataNames)
	}
}

func TestClientSecretOnlyForSecretMethods(t *testing.T) {
	for _, m := range []string{"client_secret_basic", "client_secret_post", "client_secret_jwt"} {
		x := newExchange(t, m)
		rec, creds, err := x.register(context.Background(), Local{})
		if err != nil {
			t.Fatal(err)
		}
		clientSecret, _ := creds["client_secret"].(string)
		if !regexp.MustCompile(`^[0-9A-Za-z]{36}$`).MatchString(clientSecret) {
			t.Fatalf("%s: secret %q is not 36 base62 characters (OB maximum)", m, clientSecret)
		}
		if rec.ClientSecretHash != secret.Hash(clientSecret) {
			t.Fatalf("%s: secret not stored as its hash", m)
		}
	}
}

// racingStore changes the record under the registrar once, as a concurrent PUT would.
type racingStore struct {
	dcr.Store
	raced bool
}

func (s *racingStore) Update(ctx context.Context, rec *dcr.Registration, with ...dcr.Commit) error {
	if !s.raced {
		s.raced = true
		cur, _ := s.Store.Get(ctx, rec.ClientID)
		if err := s.Store.Update(ctx, cur); err != nil {
			return err
		}
		return dcr.ErrConflict
	}
	return s.Store.Update(ctx, rec, with...)
}

func TestUpdateRetriesOnConflict(t *testing.T) {
	x := newExchange(t, "tls_client_auth")
	rec, _, err := x.register(context.Background(), Local{})
	if err != nil {
		t.Fatal(err)
	}
	rs := &racingStore{Store: x.Store}
	u := newExchange(t, "private_key_jwt")
	u.Operation, u.Store, u.ClientID, u.Existing = dcr.OpUpdate, rs, rec.ClientID, rec
	u.Commit = dcr.Commit{Once: []dcr.OnceClaim{{Key: "jti-put", TTL: time.Hour}}}
	got, _, err := u.update(context.Background(), Local{})
	if err != nil {
		t.Fatal(err)
	}
	if !rs.raced || got.Version != 3 || got.Metadata["token_endpoint_auth_method"] != "private_key_jwt" {
		t.Fatalf("after a conflict: version %d, metadata %v", got.Version, got.Metadata)
	}
	// The retry carried the commit: the jti is used with the update that was stored.
	if seen, err := x.Store.Seen(context.Background(), "jti-put"); err != nil || !seen {
		t.Fatalf("the PUT's jti after the retried update: seen %v, %v", seen, err)
	}
	// A record that moved to other software is never overwritten.
	moved := got.Clone()
	moved.SoftwareID = "sw2"
	if err := x.Store.Update(context.Background(), moved); err != nil {
		t.Fatal(err)
	}
	u.Existing, u.Store, u.Commit = got, &racingStore{Store: x.Store, raced: true}, dcr.Commit{}
	if _, _, err := u.update(context.Background(), (Local{})); !errors.Is(err, dcr.ErrConflict) {
		t.Fatalf("update of a record moved to other software: %v", err)
	}
}

// A used one-time key refuses the registration with its own rejection, and nothing is stored.
func TestRegisterWithUsedKey(t *testing.T) {
	x := newExchange(t, "tls_client_auth")
	used := dcr.BadMetadata("jti used")
	x.Commit = dcr.Commit{Once: []dcr.OnceClaim{{Key: "jti-1", TTL: time.Hour, Reject: used}}}
	if _, _, err := x.register(context.Background(), Local{}); err != nil {
		t.Fatal(err)
	}
	_, _, err := x.register(context.Background(), Local{})
	var ou *dcr.OnceUsedError
	if !errors.As(err, &ou) || ou.Rejection() != used {
		t.Fatalf("second register with the same jti: %v, want its rejection", err)
	}
	if ids, err := x.Store.ListBySoftware(context.Background(), "sw1"); err != nil || len(ids) != 1 {
		t.Fatalf("registrations of sw1: %v %v, want the first only", ids, err)
	}
}

func TestDelete(t *testing.T) {
	x := newExchange(t, "tls_client_auth")
	rec, _, err := x.register(context.Background(), Local{})
	if err != nil {
		t.Fatal(err)
	}
	x.Operation, x.ClientID, x.Existing = dcr.OpDelete, rec.ClientID, rec
	if err := x.delete(context.Background(), (Local{})); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Store.Get(context.Background(), rec.ClientID); !errors.Is(err, dcr.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

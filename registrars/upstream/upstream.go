// Package upstream is the dcr.registrars.upstream registrar: the client is provisioned in an
// authorization server that knows nothing of Open Banking (the backend), through the handler
// after dcr (normally reverse_proxy, so upstream TLS, load balancing and health checks stay
// Caddy's). Once every OB check has passed, the registration becomes a plain RFC 7591 request;
// updates and deletes become RFC 7592 calls with the backend's registration access token, which
// the gateway keeps in its store and never shows the TPP. The TPP's registration is what the
// gateway accepted; what the backend was asked for is kept beside it, for the backend's sake.
//
// The backend call cannot be inside the store's transaction, so this registrar claims the
// call's one-time keys (request jti, single-use token) first, then calls the backend, then
// stores the record with its lifecycle event, and gives the keys back if the backend or the
// store fails: a replay never reaches the backend, and a crash after the claim costs the
// client a new signature, never an answered registration's jti (see claim.go).
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/dcr/secret"
	"github.com/dcrgate/dcrgate/internal/placeholder"
)

func init() {
	caddy.RegisterModule(Upstream{})
}

// Defaults.
const (
	// DefaultMaxResponseSize bounds what the backend may answer (a client's metadata is a few
	// KiB).
	DefaultMaxResponseSize = 64 << 10
	// DefaultTimeout bounds each call to the backend.
	DefaultTimeout = caddy.Duration(10 * time.Second)
	// maxCASRetries bounds how often an update or delete re-reads a record that changed under it.
	maxCASRetries = 8
)

// Keys of dcr.Registration.Backend.
const (
	backendClientID     = "client_id"
	backendToken        = "registration_access_token"
	backendClientURI    = "registration_client_uri"
	backendRegisteredAt = "registered_at"
	// backendRequested is the metadata last sent to the backend (its translation of the
	// accepted registration), put back when an update has to be undone.
	backendRequested = "requested_metadata"
)

// Upstream provisions clients in the backend.
type Upstream struct {
	// RegistrationPath is the backend's RFC 7591 registration endpoint, the path of a request
	// sent to the next handler (e.g. /reg for node-oidc-provider). Required.
	RegistrationPath string `json:"registration_path,omitempty"`
	// InitialAccessToken is the backend's RFC 7591 initial access token, sent as a bearer
	// token on registration. Caddy placeholders such as {env.AS_INITIAL_ACCESS_TOKEN} are
	// resolved when the module is provisioned.
	InitialAccessToken string `json:"initial_access_token,omitempty"`
	// ForwardSoftwareStatement sends the SSA to the backend as software_statement (RFC 7591
	// §2.3); off by default, since an unaware backend cannot verify it.
	ForwardSoftwareStatement bool `json:"forward_software_statement,omitempty"`
	// MaxResponseSize bounds a backend answer in bytes; default 64 KiB. (max_response_size is
	// the previous release's name; see UnmarshalJSON.)
	MaxResponseSize int64 `json:"max_size,omitempty"`
	// Timeout bounds each backend call; default 10s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// CertificateBoundAccessTokens asks the backend to bind every client's access tokens to
	// its TLS client certificate (RFC 8705 §3: tls_client_certificate_bound_access_tokens
	// true), unless the client's accepted metadata says otherwise; default true. Set false
	// for a backend whose resource servers cannot check the binding.
	CertificateBoundAccessTokens *bool `json:"certificate_bound_access_tokens,omitempty"`

	initialAccessToken string
	logger             *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Upstream) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "dcr.registrars.upstream",
		New: func() caddy.Module { return new(Upstream) },
	}
}

// Provision resolves placeholders and sets defaults.
func (u *Upstream) Provision(ctx caddy.Context) error {
	u.logger = ctx.Logger()
	if u.MaxResponseSize == 0 {
		u.MaxResponseSize = DefaultMaxResponseSize
	}
	if u.Timeout == 0 {
		u.Timeout = DefaultTimeout
	}
	u.initialAccessToken = placeholder.Resolve(u.InitialAccessToken)
	return nil
}

// Validate checks the configuration.
func (u *Upstream) Validate() error {
	if u.RegistrationPath == "" || u.RegistrationPath[0] != '/' {
		return fmt.Errorf("upstream registrar: registration_path %q must be set and start with /", u.RegistrationPath)
	}
	if u.MaxResponseSize < 0 || u.Timeout < 0 {
		return errors.New("upstream registrar: max_size and timeout must not be negative")
	}
	if u.InitialAccessToken != "" && u.initialAccessToken == "" {
		// A placeholder that resolved to nothing (an unset environment variable) would open
		// registration at a backend that accepts anonymous requests, or fail every one.
		return fmt.Errorf("upstream registrar: initial_access_token %q resolved to an empty value", u.InitialAccessToken)
	}
	return nil
}

// Register claims the call's one-time keys, creates the client in the backend, then stores the
// OB record with the lifecycle event. A record that cannot be stored is undone in the backend
// (compensation), so neither side keeps half a registration, and the keys are given back.
func (u *Upstream) Register(ctx context.Context, x *dcr.Exchange, c dcr.Commit, store dcr.Store, backend dcr.Backend) (*dcr.Registration, map[string]any, error) {
	release, err := claimFirst(ctx, store, c.Once)
	if err != nil {
		return nil, nil, err
	}
	rec, creds, err := u.register(ctx, x, withoutKeys(c), store, backend)
	if err != nil {
		u.giveBack(release)
		return nil, nil, err
	}
	return rec, creds, nil
}

func (u *Upstream) register(ctx context.Context, x *dcr.Exchange, c dcr.Commit, store dcr.Store, backend dcr.Backend) (*dcr.Registration, map[string]any, error) {
	requested := u.backendRequest(x, "")
	resp, err := u.call(ctx, x, backend, http.MethodPost, u.RegistrationPath, u.initialAccessToken, requested)
	if err != nil {
		return nil, nil, err
	}
	if resp.status != http.StatusCreated && resp.status != http.StatusOK {
		return nil, nil, u.rejection(resp, "registration")
	}
	created, err := parseCreated(resp.body)
	if err != nil {
		// Without a client_id and a registration access token the client cannot be removed
		// again: say so loudly, it is the backend's misconfiguration.
		u.logger.Error("the backend's registration answer is unusable; a client may be left in the backend",
			zap.Error(err), zap.String("backend_client_id", created.clientID))
		return nil, nil, badGateway(err, "the authorization server's registration answer is not usable")
	}
	if created.clientURI == "" || created.token == "" {
		err := errors.New("the backend issued no registration_access_token/registration_client_uri")
		u.logger.Error("the backend cannot manage the client it created (enable RFC 7592 registration management); it stays in the backend",
			zap.String("backend_client_id", created.clientID))
		return nil, nil, badGateway(err, "the authorization server does not support registration management")
	}

	token, err := secret.NewToken()
	if err != nil {
		u.compensateCreate(ctx, x, backend, created)
		return nil, nil, err
	}
	issuedAt := x.Now.UTC()
	if created.issuedAt > 0 {
		issuedAt = time.Unix(created.issuedAt, 0).UTC()
	}
	rec := &dcr.Registration{
		ClientID:              created.clientID,
		SoftwareID:            x.SoftwareStatement.SoftwareID,
		OrgID:                 x.SoftwareStatement.OrgID,
		Metadata:              acceptedMetadata(x.AcceptedMetadata),
		MetadataNames:         x.MetadataNames,
		SoftwareStatement:     x.SoftwareStatement.Raw,
		SSAClaims:             x.SoftwareStatement.Claims,
		Directory:             x.SoftwareStatement.Directory,
		SigningKey:            x.SigningKey.Registered(),
		RegistrationTokenHash: secret.Hash(token),
		Backend: map[string]any{
			backendClientID:     created.clientID,
			backendToken:        created.token,
			backendClientURI:    created.clientURI,
			backendRegisteredAt: x.Now.UTC().Format(time.RFC3339),
			backendRequested:    withoutClientID(requested),
		},
		IssuedAt:  issuedAt,
		UpdatedAt: x.Now.UTC(),
	}
	u.checkAnswer(requested, created)
	if x.ClientCert != nil {
		rec.CertSubject = x.ClientCert.Subject.String()
		rec.CertThumbprint = dcr.CertificateThumbprint(x.ClientCert)
	}
	creds := map[string]any{"registration_access_token": token}
	if created.secret != "" {
		// The backend's client secret is the TPP's to keep; the gateway keeps only its hash.
		rec.ClientSecretHash = secret.Hash(created.secret)
		creds["client_secret"] = created.secret
		creds["client_secret_expires_at"] = created.secretExpiresAt
	}
	if err := store.Create(ctx, rec, c); err != nil {
		u.compensateCreate(ctx, x, backend, created)
		if errors.Is(err, dcr.ErrExists) {
			return nil, nil, badGateway(err, "the authorization server issued a client_id that was already registered")
		}
		return nil, nil, dcr.Unavailable(err, "the registration store is unavailable")
	}
	return rec, creds, nil
}

// compensateCreate deletes a client the backend created but the gateway could not record. It
// runs even when the TPP has gone away, and logs an orphan it could not remove.
func (u *Upstream) compensateCreate(ctx context.Context, x *dcr.Exchange, backend dcr.Backend, c created) {
	ctx = context.WithoutCancel(ctx)
	path, err := clientPath(c.clientURI)
	if err == nil {
		var resp *backendResponse
		if resp, err = u.call(ctx, x, backend, http.MethodDelete, path, c.token, nil); err == nil {
			if resp.status == http.StatusNoContent || resp.status == http.StatusOK || resp.status == http.StatusNotFound {
				u.logger.Warn("registration undone in the backend (compensation)", zap.String("client_id", c.clientID))
				return
			}
			err = fmt.Errorf("backend answered %d", resp.status)
		}
	}
	u.logger.Error("compensation failed: the client exists in the backend but not in the gateway; delete it there",
		zap.String("client_id", c.clientID), zap.Error(err))
}

// Update claims the call's one-time keys, replaces the client in the backend (RFC 7592 PUT),
// then the stored record with the accepted metadata, the backend's rotated registration
// access token and the lifecycle event; the keys are given back if it fails.
func (u *Upstream) Update(ctx context.Context, x *dcr.Exchange, c dcr.Commit, store dcr.Store, backend dcr.Backend) (*dcr.Registration, map[string]any, error) {
	release, err := claimFirst(ctx, store, c.Once)
	if err != nil {
		return nil, nil, err
	}
	rec, creds, err := u.update(ctx, x, withoutKeys(c), store, backend)
	if err != nil {
		u.giveBack(release)
		return nil, nil, err
	}
	return rec, creds, nil
}

func (u *Upstream) update(ctx context.Context, x *dcr.Exchange, c dcr.Commit, store dcr.Store, backend dcr.Backend) (*dcr.Registration, map[string]any, error) {
	path, token, err := backendHandle(x.Existing)
	if err != nil {
		return nil, nil, badGateway(err, "the registration has no usable backend reference")
	}
	requested := u.backendRequest(x, x.Existing.ClientID)
	resp, err := u.call(ctx, x, backend, http.MethodPut, path, token, requested)
	if err != nil {
		return nil, nil, err
	}
	if resp.status != http.StatusOK {
		return nil, nil, u.rejection(resp, "update")
	}
	updated, err := parseUpdated(resp.body, x.Existing.ClientID)
	if err != nil {
		return nil, nil, badGateway(err, "the authorization server's update answer is not usable")
	}
	u.checkAnswer(requested, updated)
	rotated := updated.token != "" && updated.token != token
	rec, err := dcr.UpdateLatest(ctx, store, x.Existing, maxCASRetries, c, func(rec *dcr.Registration) {
		rec.Metadata = acceptedMetadata(x.AcceptedMetadata)
		// A PUT replaces the registration, the names the client used included.
		rec.MetadataNames = x.MetadataNames
		rec.SoftwareStatement = x.SoftwareStatement.Raw
		rec.SSAClaims = x.SoftwareStatement.Claims
		rec.Directory = x.SoftwareStatement.Directory
		rec.SigningKey = x.SigningKey.Registered()
		rec.UpdatedAt = x.Now.UTC()
		rec.Backend = cloneBackend(rec.Backend)
		rec.Backend[backendRequested] = withoutClientID(requested)
		if rotated {
			rec.Backend[backendToken] = updated.token
		}
		if updated.clientURI != "" {
			rec.Backend[backendClientURI] = updated.clientURI
		}
	})
	if err != nil {
		u.compensateUpdate(ctx, x, backend, path, token, updated.token)
		return nil, nil, err
	}
	return rec, nil, nil
}

// compensateUpdate puts the previous metadata back in the backend when the new record could
// not be stored. With a backend that rotates its registration access token on every update,
// the token of this last call cannot be stored either: the record then needs an operator (the
// log says which client).
func (u *Upstream) compensateUpdate(ctx context.Context, x *dcr.Exchange, backend dcr.Backend, path, oldToken, newToken string) {
	ctx = context.WithoutCancel(ctx)
	token := oldToken
	if newToken != "" {
		token = newToken
	}
	prev := x.Existing
	body := previousRequest(prev)
	resp, err := u.call(ctx, x, backend, http.MethodPut, path, token, body)
	if err == nil && resp.status != http.StatusOK {
		err = fmt.Errorf("backend answered %d", resp.status)
	}
	if err != nil {
		u.logger.Error("compensation failed: the backend keeps the new metadata the gateway could not store",
			zap.String("client_id", prev.ClientID), zap.Error(err))
		return
	}
	if u2, perr := parseUpdated(resp.body, prev.ClientID); perr == nil && u2.token != "" && u2.token != oldToken {
		u.logger.Error("backend metadata restored, but the backend rotated its registration access token and the store is down: re-sync this client's backend token",
			zap.String("client_id", prev.ClientID))
		return
	}
	u.logger.Warn("update undone in the backend (compensation)", zap.String("client_id", prev.ClientID))
}

// Delete removes the client from the backend (RFC 7592 DELETE), then tombstones the record.
// A backend that no longer knows the client (404, or 401 for its registration access token
// with it) is taken as done, so that a delete whose tombstone failed can be retried. The
// call's one-time keys are claimed first and given back if it fails.
func (u *Upstream) Delete(ctx context.Context, x *dcr.Exchange, c dcr.Commit, store dcr.Store, backend dcr.Backend) error {
	release, err := claimFirst(ctx, store, c.Once)
	if err != nil {
		return err
	}
	if err := u.delete(ctx, x, withoutKeys(c), store, backend); err != nil {
		u.giveBack(release)
		return err
	}
	return nil
}

func (u *Upstream) delete(ctx context.Context, x *dcr.Exchange, c dcr.Commit, store dcr.Store, backend dcr.Backend) error {
	path, token, err := backendHandle(x.Existing)
	if err != nil {
		return badGateway(err, "the registration has no usable backend reference")
	}
	resp, err := u.call(ctx, x, backend, http.MethodDelete, path, token, nil)
	if err != nil {
		return err
	}
	switch resp.status {
	case http.StatusNoContent, http.StatusOK, http.StatusNotFound:
	case http.StatusUnauthorized:
		u.logger.Warn("the backend refused the registration access token on delete; taking the client as already gone",
			zap.String("client_id", x.Existing.ClientID))
	default:
		return u.rejection(resp, "delete")
	}
	return dcr.TombstoneLatest(ctx, store, x.Existing, maxCASRetries, c)
}

// backendRequest is what the backend is asked to register for x: the accepted metadata
// translated for an RFC 7591 server, with certificate-bound tokens unless turned off.
func (u *Upstream) backendRequest(x *dcr.Exchange, clientID string) map[string]any {
	md := backendRequest(x, clientID, u.ForwardSoftwareStatement)
	if u.CertificateBoundAccessTokens == nil || *u.CertificateBoundAccessTokens {
		bindCertificates(md)
	}
	return md
}

// checkAnswer logs (by name only) the metadata the backend did not register as asked. The
// TPP's registration stays what the gateway accepted; a backend that changes values, or
// ignores tls_client_certificate_bound_access_tokens (its tokens are then plain bearer
// tokens), needs its operator.
func (u *Upstream) checkAnswer(requested map[string]any, answer created) {
	changed, dropped := divergent(requested, answer.metadata)
	if len(changed) > 0 {
		u.logger.Warn("the backend registered metadata other than the gateway asked for; the TPP's registration shows what the gateway accepted",
			zap.String("client_id", answer.clientID), zap.Strings("metadata", changed))
	}
	if requested[certificateBound] == true && slices.Contains(dropped, certificateBound) {
		u.logger.Warn("the backend ignored tls_client_certificate_bound_access_tokens: its access tokens for this client are not bound to the client's certificate (enable RFC 8705 certificate-bound tokens in the backend, or set certificate_bound_access_tokens off)",
			zap.String("client_id", answer.clientID))
	}
	if len(dropped) > 0 {
		u.logger.Debug("the backend ignored metadata it does not support", zap.String("client_id", answer.clientID), zap.Strings("metadata", dropped))
	}
}

// previousRequest is the backend metadata to restore for a stored registration: what was last
// sent to the backend, or (for a record stored before that was kept) a translation of its
// metadata.
func previousRequest(rec *dcr.Registration) map[string]any {
	if prev, ok := rec.Backend[backendRequested].(map[string]any); ok {
		body := make(map[string]any, len(prev)+1)
		for k, v := range prev {
			body[k] = v
		}
		body["client_id"] = rec.ClientID
		return body
	}
	return backendMetadata(rec.Metadata, rec.ClientID)
}

func withoutClientID(md map[string]any) map[string]any {
	c := make(map[string]any, len(md))
	for k, v := range md {
		if k != "client_id" {
			c[k] = v
		}
	}
	return c
}

// backendHandle is the path and token of the RFC 7592 calls for a stored registration.
func backendHandle(rec *dcr.Registration) (path, token string, err error) {
	uri, _ := rec.Backend[backendClientURI].(string)
	token, _ = rec.Backend[backendToken].(string)
	if token == "" {
		return "", "", errors.New("no backend registration access token stored")
	}
	path, err = clientPath(uri)
	return path, token, err
}

func cloneBackend(m map[string]any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

// badGateway is a 502: the backend answered, but not in a way the gateway can use.
func badGateway(cause error, format string, args ...any) *dcr.Error {
	return (&dcr.Error{Status: http.StatusBadGateway, Code: dcr.CodeServerError,
		Description: fmt.Sprintf(format, args...)}).WithCause(cause)
}

// Interface guards
var (
	_ caddy.Provisioner = (*Upstream)(nil)
	_ caddy.Validator   = (*Upstream)(nil)
	_ dcr.Registrar     = (*Upstream)(nil)
)

package accesstoken

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"
)

// revoke revokes token at the RFC 7009 endpoint and forgets any cached introspection of it.
func (s *authServer) revoke(ctx context.Context, token string) error {
	if s.cache != nil {
		s.cache.forget(sha256.Sum256([]byte(token)))
	}
	status, _, err := s.post(ctx, s.revocationEndpoint, url.Values{"token": {token}, "token_type_hint": {"access_token"}})
	if err != nil {
		return err
	}
	// RFC 7009 §2.2: 200 whether or not the token was valid.
	if status != http.StatusOK {
		return fmt.Errorf("%w: revocation answered %d", ErrUnavailable, status)
	}
	return nil
}

// revokeInBackground revokes token without holding up the answer to the TPP: the call that
// caused it has been decided already. It is bounded by the call timeout and ends with the
// config. reason says why, for the log, which names the token by its fingerprint only.
func (a *AccessToken) revokeInBackground(token, reason string) {
	if a.as == nil || a.as.revocationEndpoint == "" {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(a.ctx, a.as.http.Timeout+time.Second)
		defer cancel()
		fields := []zap.Field{zap.String("reason", reason), zap.String("token_sha256_prefix", tokenFingerprint(token))}
		if err := a.as.revoke(ctx, token); err != nil {
			a.logger.Warn("revoking an access token failed", append(fields, zap.Error(err))...)
			return
		}
		a.logger.Info("access token revoked", fields...)
	}()
}

package accesstoken

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"

	"github.com/dcrgate/dcrgate/dcr"
)

// TestScreen: a register call whose single-use token was consumed is refused from the
// token's unverified payload (or its hash), with Protect's answer, before any verification:
// a consumed jti carried by a token of a key the issuer never had is refused too. Anything
// else passes the screen untouched, for Protect to judge.
func TestScreen(t *testing.T) {
	is := newIssuer(t)
	a := mustProvision(t, jwtConfig(is, ""))
	ctx := context.Background()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(5 * time.Minute).Unix()
	consumed := is.mint(t, is.claims(map[string]any{"jti": "used-1", "exp": exp}))
	forged := is.mintWith(t, is.claims(map[string]any{"jti": "used-1", "exp": exp}), jwa.PS256, other, is.kid)
	opaque := "opaque-token-" + strings.Repeat("x", 20)

	store := &onceStore{}
	for _, token := range []string{consumed, opaque} {
		claims := map[string]any(nil)
		if token == consumed {
			claims = map[string]any{"iss": testIssuer, "jti": "used-1"}
		}
		if _, err := store.Claim(ctx, a.consumedKey(token, claims), time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	screen := func(op dcr.Operation, token string, s dcr.Store) error {
		c := exchange(op, s, "Bearer "+token)
		return a.Screen(ctx, c.Exchange, dcr.ReadOnly(s))
	}
	for name, token := range map[string]string{"consumed JWT": consumed, "forged signature, consumed jti": forged, "consumed opaque token": opaque} {
		if err := screen(dcr.OpRegister, token, store); err == nil {
			t.Errorf("%s: passed the screen", name)
		} else {
			assertErr(t, err, 401, dcr.CodeInvalidToken, `Bearer error="invalid_token"`)
		}
	}
	for name, tc := range map[string]struct {
		op    dcr.Operation
		token string
	}{
		"fresh JWT":            {dcr.OpRegister, is.mint(t, is.claims(map[string]any{"jti": "fresh", "exp": exp}))},
		"consumed, on a read":  {dcr.OpRead, consumed},
		"fresh opaque token":   {dcr.OpRegister, "another-opaque-token"},
		"not a token at all":   {dcr.OpRegister, "a.b.c"},
		"token over the limit": {dcr.OpRegister, strings.Repeat("a", MaxTokenLength+1)},
	} {
		if err := screen(tc.op, tc.token, store); err != nil {
			t.Errorf("%s: screened out: %v", name, err)
		}
	}
	// The forged token is refused by Protect too, once it is not screened (fresh store).
	if err := exchange(dcr.OpRegister, &onceStore{}, "Bearer "+forged).protect(ctx, a); err == nil {
		t.Fatal("a token of another key was accepted")
	}
	// A store that cannot answer is an outage, as in Protect.
	if err := screen(dcr.OpRegister, consumed, &onceStore{err: errors.New("disk gone")}); err == nil {
		t.Fatal("store down: passed the screen")
	} else {
		assertErr(t, err, 503, dcr.CodeTemporarilyUnavailable, "")
	}
	// single_use off: nothing to screen.
	b := mustProvision(t, fmt.Sprintf(`{"issuer": %q, "keys": {"jwks": %s}, "register": {"single_use": false}}`, testIssuer, is.jwks))
	c := exchange(dcr.OpRegister, store, "Bearer "+consumed)
	if err := b.Screen(ctx, c.Exchange, dcr.ReadOnly(store)); err != nil {
		t.Fatalf("single_use off: %v", err)
	}
}

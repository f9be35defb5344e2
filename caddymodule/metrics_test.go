package caddymodule

import (
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
)

func TestErrorLabelIsBounded(t *testing.T) {
	if got := errorLabel(nil); got != "" {
		t.Fatalf("success: %q", got)
	}
	if got := errorLabel(dcr.BadRedirectURI("x")); got != dcr.CodeInvalidRedirectURI {
		t.Fatalf("known code: %q", got)
	}
	if got := errorLabel(&dcr.Error{Code: "made_up_by_a_backend"}); got != "other" {
		t.Fatalf("unknown code: %q", got)
	}
}

package placeholder

import (
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	t.Setenv("DCRGATE_TEST_PLACEHOLDER", "v1")
	t.Setenv("DCRGATE_TEST_EMPTY", "")
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"{env.DCRGATE_TEST_PLACEHOLDER}", "v1"},
		{"a-{env.DCRGATE_TEST_PLACEHOLDER}-b", "a-v1-b"},
		{"{env.DCRGATE_TEST_EMPTY}", ""},
		{"x{unknown.placeholder}y", "x{unknown.placeholder}y"}, // unknown: left as written
		{"sec{ret", "sec{ret"},
	}
	for _, tc := range tests {
		if got := Resolve(tc.in); got != tc.want {
			t.Errorf("Resolve(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNonEmpty(t *testing.T) {
	t.Setenv("DCRGATE_TEST_PLACEHOLDER", "v1")
	t.Setenv("DCRGATE_TEST_EMPTY", "")
	if v, err := NonEmpty("opt", ""); v != "" || err != nil {
		t.Fatalf("an unset option: %q %v", v, err)
	}
	if v, err := NonEmpty("opt", "{env.DCRGATE_TEST_PLACEHOLDER}"); v != "v1" || err != nil {
		t.Fatalf("a set option: %q %v", v, err)
	}
	_, err := NonEmpty("redis store: address", "{env.DCRGATE_TEST_EMPTY}")
	if err == nil || !strings.Contains(err.Error(), "redis store: address") || !strings.Contains(err.Error(), "{env.DCRGATE_TEST_EMPTY}") {
		t.Fatalf("an option that resolves to nothing: %v", err)
	}
}

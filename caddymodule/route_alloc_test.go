package caddymodule

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestSameSegmentsIsLowerJoin: sameSegments says what comparing the lower-cased joins of the
// segments said, on ASCII, Unicode with special cases and invalid UTF-8.
func TestSameSegmentsIsLowerJoin(t *testing.T) {
	words := []string{"register", "REGISTER", "Register", "reg", "ister", "a", "", "İ", "i̇", "ǅ", "ǆ", "K", "k", "ß", "SS", "\xc3", "\xff", "\uFFFD", "Ω", "ω"}
	lists := [][]string{nil}
	for _, a := range words {
		lists = append(lists, []string{a})
		for _, b := range words[:8] {
			lists = append(lists, []string{a, b})
		}
	}
	for _, a := range lists {
		for _, b := range lists {
			if len(a) != len(b) {
				continue
			}
			want := strings.ToLower(strings.Join(a, "/")) == strings.ToLower(strings.Join(b, "/"))
			if got := sameSegments(a, b); got != want {
				t.Errorf("sameSegments(%q, %q) = %v, want %v", a, b, got, want)
			}
		}
	}
	if !utf8.ValidString("İ") {
		t.Fatal("test data")
	}
}

// TestSawHostKeepsItsHost: the host of a DCR call is remembered, and the same host again costs
// no allocation.
func TestSawHostKeepsItsHost(t *testing.T) {
	o := &operatorRoute{}
	o.sawHost("tpp.example:8443")
	if got := o.host(&Handler{}); got != "tpp.example:8443" {
		t.Fatalf("host %q", got)
	}
	host := strings.Repeat("h", 3) + ".example" // not a constant
	o.sawHost(host)
	if n := testing.AllocsPerRun(100, func() { o.sawHost(host) }); n != 0 {
		t.Fatalf("%v allocations for a host seen before", n)
	}
	if got := o.host(&Handler{}); got != host {
		t.Fatalf("host %q, want %q", got, host)
	}
}

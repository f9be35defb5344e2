package caddymodule

import "testing"

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{65536: "64 KiB", 1 << 20: "1 MiB", 3 << 20: "3 MiB", 1536: "1536 bytes", 1000: "1000 bytes", 1 << 10: "1 KiB", 10: "10 bytes"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

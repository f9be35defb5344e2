package gatewaytest

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Chromium runs the real headless Chromium (Debian's chromium package; .ci/run installs it)
// on url with a fresh profile and returns the DOM after the page's scripts ran (--dump-dom),
// or, with screenshot set, writes a PNG there. The flags keep it off the network beyond url:
// this machine's closed network refuses Chromium's background connections.
func Chromium(t testing.TB, url, screenshot string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (Debian package chromium; .ci/run installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(),
		// The gateway's certificate is the sandbox CA's, which this fresh profile does not trust.
		"--ignore-certificate-errors",
		"--virtual-time-budget=10000"}
	if screenshot != "" {
		args = append(args, "--screenshot="+screenshot, "--window-size=1480,900", "--hide-scrollbars")
	} else {
		args = append(args, "--dump-dom")
	}
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, stderr.String())
	}
	return string(out)
}

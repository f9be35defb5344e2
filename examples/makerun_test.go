package examples_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dcrgate/dcrgate/internal/gatewaytest"
	"github.com/dcrgate/dcrgate/internal/tppclient"
)

// makeRun is `make run` without make (which would build into the repository): the sandbox
// made for the port if missing, then the example Caddyfile with its state in a directory of
// the test's, as the Makefile's run target does.
type makeRun struct {
	bin, sandbox, admin string
	port                int
	out                 *lockedBuffer
}

func startMakeRun(t *testing.T) *makeRun {
	t.Helper()
	r := &makeRun{bin: gatewaytest.Binary(t), sandbox: filepath.Join(t.TempDir(), "sandbox"),
		port: gatewaytest.FreePort(t), out: &lockedBuffer{}}
	r.admin = fmt.Sprintf("127.0.0.1:%d", gatewaytest.FreePort(t))
	base := fmt.Sprintf("https://localhost:%d", r.port)
	if out, err := exec.Command(r.bin, "dcr", "sandbox", "init", "--dir", r.sandbox, "--base-url", base, "--if-missing").CombinedOutput(); err != nil {
		t.Fatalf("sandbox init: %v\n%s", err, out)
	}
	state := filepath.Join(t.TempDir(), "state")
	cmd := exec.Command(r.bin, "run", "--config", "Caddyfile", "--adapter", "caddyfile")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+state, "XDG_CONFIG_HOME="+filepath.Join(state, "config"),
		fmt.Sprintf("DCRGATE_PORT=%d", r.port),
		fmt.Sprintf("DCRGATE_HTTP_PORT=%d", gatewaytest.FreePort(t)),
		"DCRGATE_ADMIN="+r.admin,
		fmt.Sprintf("DCRGATE_BACKEND_PORT=%d", gatewaytest.FreePort(t)),
		"DCRGATE_SANDBOX="+r.sandbox)
	cmd.Stdout, cmd.Stderr = r.out, r.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	// Ready when the console answers over TLS (the last thing the site provisions).
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // readiness only; the CLI checks the sandbox CA
	deadline := time.Now().Add(startupDeadline)
	for {
		select {
		case <-exited:
			t.Fatalf("the gateway exited:\n%s", r.out.String())
		default:
		}
		resp, err := client.Get(base + "/console/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example Caddyfile did not come up (last: %v):\n%s", err, r.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// caddy runs the binary with args and returns its exit code and output.
func (r *makeRun) caddy(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(r.bin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatal(err)
	}
	return 0, string(out)
}

// TestMakeRunOperatorFlow is issue 12's "done when", on the example Caddyfile of `make run`:
// a TPP registers; `caddy dcr clients list` shows it, `show` has no secret, the console page
// in a real Chromium lists it and shows its history; `delete` removes it, the TPP's token then
// gets 401 and the console no longer lists it.
func TestMakeRunOperatorFlow(t *testing.T) {
	gatewaytest.SkipInShortMode(t, "the example Caddyfile, the binary and chromium")
	r := startMakeRun(t)

	if code, out := r.caddy(t, "dcr", "register", "--sandbox", r.sandbox); code != 0 || !strings.Contains(out, "201") {
		t.Fatalf("register: exit %d\n%s\n%s", code, out, r.out.String())
	}
	st, err := tppclient.LoadState(filepath.Join(r.sandbox, "tpps", "1", "registration.json"))
	if err != nil || st.ClientID == "" || st.RegistrationAccessToken == "" {
		t.Fatalf("state after register: %+v %v", st, err)
	}

	if code, out := r.caddy(t, "dcr", "clients", "list", "--address", r.admin); code != 0 || !strings.Contains(out, st.ClientID) {
		t.Fatalf("clients list: exit %d, want %s in\n%s", code, st.ClientID, out)
	}
	code, out := r.caddy(t, "dcr", "clients", "show", st.ClientID, "--address", r.admin, "--json")
	if code != 0 || !strings.Contains(out, st.ClientID) {
		t.Fatalf("clients show: exit %d\n%s", code, out)
	}
	for _, secret := range []string{st.RegistrationAccessToken, "registration_access_token", "client_secret", "token_hash"} {
		if strings.Contains(out, secret) {
			t.Errorf("clients show prints %q:\n%s", secret, out)
		}
	}

	console := fmt.Sprintf("https://localhost:%d/console/", r.port)
	listed := `data-client-id="` + st.ClientID + `"`
	if dom := gatewaytest.Chromium(t, console, ""); !strings.Contains(dom, listed) {
		t.Fatalf("the console does not list %s:\n%s", st.ClientID, dom)
	}
	if dom := gatewaytest.Chromium(t, console+"?client="+st.ClientID, ""); !strings.Contains(dom, `<tr data-event="registered">`) ||
		strings.Contains(dom, st.RegistrationAccessToken) {
		t.Fatalf("the console's detail of %s has no history (or shows the token):\n%s", st.ClientID, dom)
	}
	gatewaytest.Chromium(t, console, filepath.Join(t.TempDir(), "console.png"))

	if code, out := r.caddy(t, "dcr", "clients", "delete", st.ClientID, "--address", r.admin); code != 0 {
		t.Fatalf("clients delete: exit %d\n%s", code, out)
	}
	if code, out := r.caddy(t, "dcr", "get", "--sandbox", r.sandbox); code != 1 || !strings.Contains(out, "401") {
		t.Fatalf("the TPP's get after the operator's delete: exit %d, want 1 and 401\n%s", code, out)
	}
	if dom := gatewaytest.Chromium(t, console, ""); strings.Contains(dom, listed) || !strings.Contains(dom, `<table id="clients" data-count="0">`) {
		t.Fatalf("the console still lists the deleted %s (or its table is not empty):\n%s", st.ClientID, dom)
	}
}

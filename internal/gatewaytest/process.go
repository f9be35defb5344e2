package gatewaytest

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// process is a child process a test started: its output, and a way to stop it.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startProcess starts cmd with its output in logs and polls ready until it reports nil; the
// test fails if the process exits or is not ready within timeout. what names it in failures.
func startProcess(t testing.TB, what string, cmd *exec.Cmd, logs *syncBuffer, timeout time.Duration, ready func() error) *process {
	t.Helper()
	cmd.Stdout, cmd.Stderr = logs, logs
	// If the test binary dies (a timeout, a kill), its servers die with it instead of
	// lingering on their ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", what, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.exited:
			t.Fatalf("%s exited during start:\n%s", what, logs.String())
		default:
		}
		err := ready()
		if err == nil {
			return p
		}
		if time.Now().After(deadline) {
			p.stop()
			t.Fatalf("%s did not start: %v\n%s", what, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the process: SIGTERM, then SIGKILL after 10s. A nil process is already stopped.
func (p *process) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

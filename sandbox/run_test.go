//go:build linux

package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartStopProcess(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	// The shell ignores SIGTERM, so stopping it needs the kill escalation, and its child shares
	// its process group.
	p, err := startProcess(dir, "sleeper", []string{sh, "-c", "trap '' TERM; echo started; sleep 60 & wait"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !processAlive(p.PID, p.Argv0) {
		t.Fatal("started process is not alive")
	}
	// Until execve has mapped the new arguments the program cannot be told apart; wait for it.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/cmdline"); len(b) > 0 {
			break
		}
	}
	if processAlive(p.PID, "/not/the/program") {
		t.Error("process alive under another program name")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	began := time.Now()
	if err := stopProcess(ctx, p); err != nil {
		t.Fatal(err)
	}
	if processAlive(p.PID, p.Argv0) {
		t.Error("process survived stopProcess")
	}
	if d := time.Since(began); d < stopGrace {
		t.Logf("stopped in %s (before the grace period ended)", d)
	}
	if err := stopProcess(ctx, p); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestWaitReadyReportsExit(t *testing.T) {
	dir := t.TempDir()
	p, err := startProcess(dir, "crasher", []string{"/bin/sh", "-c", "echo boom-reason; exit 3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	never := func(context.Context) error { return errors.New("not ready") }
	err = waitReady(t.Context(), p, never, 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "boom-reason") {
		t.Errorf("waitReady error = %v, want the log tail with the reason", err)
	}
}

func TestWaitReadyTimesOut(t *testing.T) {
	dir := t.TempDir()
	p, err := startProcess(dir, "idler", []string{"/bin/sh", "-c", "echo idling; sleep 30"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stopProcess(context.Background(), p) })
	never := func(context.Context) error { return errors.New("not ready") }
	err = waitReady(t.Context(), p, never, time.Second)
	if err == nil || !strings.Contains(err.Error(), "within 1s") || !strings.Contains(err.Error(), "idling") {
		t.Errorf("waitReady error = %v", err)
	}
}

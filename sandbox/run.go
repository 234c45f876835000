package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Stop budgets: components shut down gracefully within a few seconds; after that they are killed.
const (
	stopGrace = 15 * time.Second
	killGrace = 5 * time.Second
	pollEvery = 200 * time.Millisecond
)

// startProcess starts argv detached, with its output appended to dir/logs/<name>.log, and returns
// it as recorded in state.
func startProcess(dir, name string, argv, env []string) (Process, error) {
	log := logPath(dir, name)
	if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
		return Process{}, fmt.Errorf("failed to create log directory %q: %w", filepath.Dir(log), err)
	}
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Process{}, fmt.Errorf("failed to open log %q: %w", log, err)
	}
	defer f.Close() // the child holds its own copy
	fmt.Fprintf(f, "==== %s starting %s\n", time.Now().UTC().Format(time.RFC3339), name)
	cmd := exec.Command(argv[0], argv[1:]...) //nolint:gosec // argv comes from the sandbox's own configuration
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	detach(cmd)
	if err := cmd.Start(); err != nil {
		return Process{}, fmt.Errorf("failed to start %q: %w", name, err)
	}
	// Reap the child if it exits while this process still lives (tests), so it never lingers as a
	// zombie that looks alive; the goroutine ends with the child.
	go func() { _ = cmd.Wait() }()
	return Process{Name: name, PID: cmd.Process.Pid, Argv0: cmd.Args[0], Log: log, Running: true}, nil
}

// waitReady polls probe until it succeeds, the process exits, or timeout passes; failures carry
// the tail of the component's log, which is where the reason is.
func waitReady(ctx context.Context, p Process, probe func(context.Context) error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := probe(ctx)
		if err == nil {
			return nil
		}
		if !processAlive(p.PID, p.Argv0) {
			return fmt.Errorf("failed to start %q: it exited (%v)\n%s", p.Name, err, logTail(p.Log, 30))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to wait for %q to become ready within %s: %w (%v)\n%s",
				p.Name, timeout, ctx.Err(), err, logTail(p.Log, 30))
		case <-time.After(pollEvery):
		}
	}
}

// stopProcess terminates p's process group and waits until the pid is gone, killing it when it
// does not stop within stopGrace. A process that is not running is already stopped.
func stopProcess(ctx context.Context, p Process) error {
	if !processAlive(p.PID, p.Argv0) {
		return nil
	}
	if err := signalProcess(p.PID, terminateSignal); err != nil {
		return fmt.Errorf("failed to stop %q (pid %d): %w", p.Name, p.PID, err)
	}
	if waitGone(ctx, p, stopGrace) {
		return nil
	}
	if err := signalProcess(p.PID, killSignal); err != nil {
		return fmt.Errorf("failed to kill %q (pid %d): %w", p.Name, p.PID, err)
	}
	if waitGone(ctx, p, killGrace) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("failed to stop %q (pid %d): %w", p.Name, p.PID, err)
	}
	return fmt.Errorf("failed to stop %q (pid %d): still running after SIGKILL", p.Name, p.PID)
}

// waitGone polls until p has exited, timeout passes or ctx ends.
func waitGone(ctx context.Context, p Process, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for processAlive(p.PID, p.Argv0) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(pollEvery / 4)
	}
	return true
}

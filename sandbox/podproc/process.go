package podproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// instance is one running process of a pod.
type instance struct {
	spec    spec
	cmd     *exec.Cmd
	log     string
	started time.Time
	// done is closed when the process has exited; err is then its result.
	done chan struct{}
	err  error
	// stopping is closed when the runner asked the process to stop.
	stopping chan struct{}
	once     sync.Once
	// ready is the readiness last written to the pod.
	ready atomic.Bool
}

// start runs s's binary in workDir (emptied first: a new container starts
// from its image, not from what the last one left) with output appended to
// logFile.
func start(s spec, workDir, logFile string, extraEnv []string) (*instance, error) {
	if err := os.RemoveAll(workDir); err != nil {
		return nil, fmt.Errorf("failed to clean working directory %q: %w", workDir, err)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create working directory %q: %w", workDir, err)
	}
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create log directory %q: %w", filepath.Dir(logFile), err)
	}
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open log %q: %w", logFile, err)
	}
	defer f.Close() // the child holds its own copy
	fmt.Fprintf(f, "==== %s starting %s for pod %s (%s) on %s\n", time.Now().UTC().Format(time.RFC3339), s.binary, s.key, s.uid, s.ip)
	cmd := exec.Command(s.binary, s.args...) //nolint:gosec // the binary is one the runner was given, args come from the pod spec
	cmd.Dir = workDir
	cmd.Stdout, cmd.Stderr = f, f
	// Only what the pod declares: the host's environment is not the container's.
	cmd.Env = append(append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, s.env...), extraEnv...)
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %q for pod %q: %w", s.binary, s.key, err)
	}
	in := &instance{spec: s, cmd: cmd, log: logFile, started: time.Now(), done: make(chan struct{}), stopping: make(chan struct{})}
	go func() {
		in.err = cmd.Wait()
		close(in.done)
	}()
	return in, nil
}

// exited reports whether the process has ended.
func (in *instance) exited() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits the pod's grace period (or until ctx ends),
// then kills; it returns once the process is gone, so its address is free
// for whoever binds it next. Only the first call signals.
func (in *instance) stop(ctx context.Context) {
	first := false
	in.once.Do(func() { first = true; close(in.stopping) })
	if !first {
		<-in.done
		return
	}
	if in.exited() {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(in.spec.grace)
	defer t.Stop()
	select {
	case <-in.done:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	_ = in.cmd.Process.Kill()
	<-in.done
}

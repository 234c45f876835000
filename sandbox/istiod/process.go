package istiod

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// stopGrace is how long pilot-discovery gets to drain after SIGTERM before
// it is killed; the chart's terminationGracePeriodSeconds is longer, but
// nothing in the sandbox needs a graceful drain.
const stopGrace = 10 * time.Second

// instance is one running pilot-discovery.
type instance struct {
	spec    spec
	cmd     *exec.Cmd
	log     string
	started time.Time
	// done is closed when the process has exited; err is then its result.
	done chan struct{}
	err  error
}

// start runs bin for s in workDir (emptied first: a new container starts
// from its image, not from what the last one left) with output appended to
// logFile.
func start(s spec, bin, workDir, logFile string, extraArgs, extraEnv []string) (*instance, error) {
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
	args := append(append([]string{}, s.args...), extraArgs...)
	fmt.Fprintf(f, "==== %s starting pilot-discovery %s for pod %s (%s) on %s\n", time.Now().UTC().Format(time.RFC3339), s.version, s.key, s.uid, s.ip)
	cmd := exec.Command(bin, args...) //nolint:gosec // the binary is the sandbox's own build, args come from the pod spec
	cmd.Dir = workDir
	cmd.Stdout, cmd.Stderr = f, f
	// Only what the pod declares (and what stands in for its mounts): the
	// host's environment is not the container's.
	cmd.Env = append(append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, s.env...), extraEnv...)
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start pilot-discovery for pod %q: %w", s.key, err)
	}
	in := &instance{spec: s, cmd: cmd, log: logFile, started: time.Now(), done: make(chan struct{})}
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

// stop sends SIGTERM, waits stopGrace, then kills; it returns once the
// process is gone, so its addresses are free for whoever binds them next.
func (in *instance) stop(ctx context.Context) {
	if in.exited() {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopGrace)
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

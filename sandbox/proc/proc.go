// Package proc starts and stops the host processes that stand in for kwok
// pods' containers (sandbox/podproc's workloads, sandbox/istiod's
// pilot-discovery), the way a kubelet runs a container: a fresh working
// directory, output appended to the pod's log, only the environment the pod
// declares, and on stop SIGTERM, then SIGKILL once the grace period is over.
// A process dies with its runner, so none outlives it holding a pod address.
package proc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Options of Start.
type Options struct {
	// Name says what runs, in the log's banner and in errors.
	Name   string
	Binary string
	Args   []string
	// Env is the whole environment besides PATH: the host's environment is
	// not the container's.
	Env []string
	// WorkDir is emptied first: a new container starts from its image, not
	// from what the last one left.
	WorkDir string
	LogFile string
	// Pod is the pod's namespace/name, UID and address, for the banner.
	Pod, UID, IP string
}

// Process is one running process.
type Process struct {
	// Log is the file its output goes to.
	Log     string
	Started time.Time
	cmd     *exec.Cmd
	// done is closed when the process has exited; err is then its result.
	done chan struct{}
	err  error
}

// Start runs o.Binary.
func Start(o Options) (*Process, error) {
	if err := os.RemoveAll(o.WorkDir); err != nil {
		return nil, fmt.Errorf("failed to clean working directory %q: %w", o.WorkDir, err)
	}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create working directory %q: %w", o.WorkDir, err)
	}
	if err := os.MkdirAll(filepath.Dir(o.LogFile), 0o755); err != nil {
		return nil, fmt.Errorf("failed to create log directory %q: %w", filepath.Dir(o.LogFile), err)
	}
	f, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open log %q: %w", o.LogFile, err)
	}
	defer f.Close() // the child holds its own copy
	fmt.Fprintf(f, "==== %s starting %s for pod %s (%s) on %s\n", time.Now().UTC().Format(time.RFC3339), o.Name, o.Pod, o.UID, o.IP)
	cmd := exec.Command(o.Binary, o.Args...) //nolint:gosec // the runners' own binaries, args from the pod spec
	cmd.Dir = o.WorkDir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, o.Env...)
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to start %s for pod %q: %w", o.Name, o.Pod, err)
	}
	p := &Process{Log: o.LogFile, Started: time.Now(), cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the process ended; nil until it has.
func (p *Process) Err() error {
	if !p.Exited() {
		return nil
	}
	return p.err
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits grace (or until ctx ends), then kills; it
// returns once the process is gone, so its addresses are free for whoever
// binds them next.
func (p *Process) Stop(ctx context.Context, grace time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Kill ends the process at once and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

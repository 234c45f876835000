package vmagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Service starts and restarts the sidecar. Production VMs use systemd (the
// unit's ExecStart runs Root/current/...); tests and hosts without systemd use
// the agent's own detached process supervisor.
type Service interface {
	// Restart stops the sidecar if it runs and starts what current points at.
	Restart(ctx context.Context) error
	// Ensure starts the sidecar if it does not run (after a reboot or a kill).
	Ensure(ctx context.Context) error
}

// NewService returns the configured service manager.
func NewService(c Config) Service {
	if c.Service == "process" {
		return &process{root: c.Root, command: c.Command, args: c.Args, env: c.Env}
	}
	return systemd{unit: c.Unit}
}

// systemd drives a unit with systemctl (no D-Bus library).
type systemd struct{ unit string }

func (s systemd) Restart(ctx context.Context) error { return s.run(ctx, "restart") }
func (s systemd) Ensure(ctx context.Context) error  { return s.run(ctx, "start") }

func (s systemd) run(ctx context.Context, verb string) error {
	out, err := exec.CommandContext(ctx, "systemctl", verb, s.unit).CombinedOutput()
	if err != nil {
		return fmt.Errorf("failed to %s unit %q: %w: %s", verb, s.unit, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// process runs the sidecar as a detached process (its own session, so it
// outlives the agent as it would under systemd). The pid file is for people;
// the agent finds its sidecar by executable path.
type process struct {
	root    string
	command string
	args    []string
	env     map[string]string
}

func (p *process) pidFile() string { return filepath.Join(p.root, "sidecar.pid") }

func (p *process) running() []int { return SidecarPIDs(p.root) }

// SidecarPIDs returns the pids of the sidecar processes of the agent rooted
// at root: those whose executable lives under root/versions. Scanning /proc
// instead of trusting the pid file also finds a sidecar started by an agent
// killed before it wrote the pid file, and never signals a recycled pid.
func SidecarPIDs(root string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	prefix := filepath.Join(root, "versions") + "/"
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil || !strings.HasPrefix(exe, prefix) {
			continue
		}
		if alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func zombie(stat string) bool {
	i := strings.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

func (p *process) Ensure(ctx context.Context) error {
	if len(p.running()) > 0 {
		return nil
	}
	return p.start()
}

func (p *process) Restart(ctx context.Context) error {
	if err := p.stop(ctx); err != nil {
		return err
	}
	return p.start()
}

// stop sends SIGTERM to every sidecar process, then SIGKILL after 10 s.
func (p *process) stop(ctx context.Context) error {
	pids := p.running()
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(pids) > 0 {
		if time.Now().After(deadline) {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("failed to stop sidecar pids %v: %w", pids, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		// Poll only the pids found: a /proc scan per tick costs a readlink
		// per process on the host, for every agent restarting at once.
		pids = slices.DeleteFunc(pids, func(pid int) bool { return !alive(pid) })
	}
	return nil
}

// alive says pid runs and is not a zombie.
func alive(pid int) bool {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !zombie(string(st))
}

func (p *process) start() error {
	cur := filepath.Join(p.root, "current")
	env := []string{"PATH=" + os.Getenv("PATH")}
	if b, err := os.ReadFile(filepath.Join(cur, "etc", "cluster.env")); err == nil {
		for k, v := range ParseEnvFile(string(b)) {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range p.env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	// Resolve the symlink now: the process keeps running its own version's
	// files even when current moves on.
	dir, err := filepath.EvalSymlinks(cur)
	if err != nil {
		return fmt.Errorf("failed to resolve %q: %w", cur, err)
	}
	log, err := os.OpenFile(filepath.Join(p.root, "sidecar.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return diskError(fmt.Errorf("failed to open sidecar log: %w", err))
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(dir, p.command), p.args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("failed to start sidecar %q: %w", cmd.Path, err)
	}
	go func() { _ = cmd.Wait() }() // reap it if it dies while we run
	tmp := p.pidFile() + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return diskError(fmt.Errorf("failed to write pid file: %w", err))
	}
	if err := os.Rename(tmp, p.pidFile()); err != nil {
		return fmt.Errorf("failed to write pid file: %w", err)
	}
	return syncDir(p.root)
}

// Stop stops a process-supervised sidecar (tests and `meshroll-agent stop`).
func Stop(ctx context.Context, c Config) error {
	p, ok := NewService(c).(*process)
	if !ok {
		return errors.New("stop is only for the process service; use systemctl stop")
	}
	return p.stop(ctx)
}

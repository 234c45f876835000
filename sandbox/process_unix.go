//go:build unix

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// detach puts the child in its own session so it survives the command that started it and a
// Ctrl-C in the user's terminal does not reach it.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}

// processAlive reports whether pid is running and is still the program started as argv0, so that
// a pid recycled by the kernel after a reboot is never mistaken for (or killed as) a component.
func processAlive(pid int, argv0 string) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if stat, err := os.ReadFile(proc + "/stat"); err == nil {
		// The state letter follows the parenthesised command name; a zombie has exited.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X') {
			return false
		}
	}
	if argv0 == "" {
		return true
	}
	cmdline, err := os.ReadFile(proc + "/cmdline")
	if err != nil || len(cmdline) == 0 {
		// No procfs (macOS): trust the signal probe. Empty: the child is inside execve (its new
		// arguments are not mapped yet), which happens right after exec.Cmd.Start returns.
		return true
	}
	first, _, _ := bytes.Cut(cmdline, []byte{0})
	return string(first) == argv0
}

// signalProcess sends sig to the process group led by pid (components are session leaders, and
// the injector may have children), falling back to the single process.
func signalProcess(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err == nil || errors.Is(err, syscall.EPERM) {
		return err
	}
	err := syscall.Kill(pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// terminateSignal and killSignal are the polite and the final stop signals.
const (
	terminateSignal = syscall.SIGTERM
	killSignal      = syscall.SIGKILL
)

// lockFile takes an exclusive advisory lock on path, waiting until ctx is done, so that concurrent
// Up/Down calls on one sandbox, or concurrent builds, do not interleave.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("failed to open lock file %q: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("failed to lock %q: %w", path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("failed to lock %q: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

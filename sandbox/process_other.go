//go:build !unix

package sandbox

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
)

// errUnsupported explains why a sandbox cannot run here: it relies on sessions, process groups
// and signals.
var errUnsupported = errors.New("the sandbox needs a unix system")

// detach is a no-op where sessions do not exist.
func detach(*exec.Cmd) {}

// processAlive cannot identify processes portably here, so nothing is considered running.
func processAlive(int, string) bool { return false }

// signalProcess is unsupported here.
func signalProcess(int, syscall.Signal) error { return errUnsupported }

// terminateSignal and killSignal are placeholders so the portable code compiles.
const (
	terminateSignal = syscall.Signal(15)
	killSignal      = syscall.Signal(9)
)

// lockFile is a no-op here; sandboxes cannot start anyway.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }

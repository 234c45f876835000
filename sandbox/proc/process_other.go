//go:build !linux

package proc

import "os/exec"

// dieWithParent has no portable equivalent outside Linux; the runner stops
// its processes itself when it ends.
func dieWithParent(*exec.Cmd) {}

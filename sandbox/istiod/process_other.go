//go:build !linux

package istiod

import "os/exec"

// dieWithParent has no portable equivalent; the runner stops its processes
// when it ends normally.
func dieWithParent(*exec.Cmd) {}

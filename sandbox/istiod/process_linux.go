package istiod

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill pilot-discovery when the runner dies,
// even by SIGKILL, so no istiod outlives its runner holding a pod address.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

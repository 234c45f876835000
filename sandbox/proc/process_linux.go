package proc

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the process when the runner dies, even
// by SIGKILL, so no process outlives its runner holding a pod address.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

package localmysql

import (
	"os/exec"
	"syscall"
)

const sigTERM = syscall.SIGTERM

// KillWithParent makes the child die with the process that started it, so
// that a crashed test or demo leaves no server behind.
func KillWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

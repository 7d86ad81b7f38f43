package testenv

import (
	"os/exec"
	"syscall"
)

// setPdeathsig kills the child if the test binary dies without cleaning up.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

const syscallTERM = syscall.SIGTERM

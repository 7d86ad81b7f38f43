//go:build !linux

package testenv

import (
	"os/exec"
	"syscall"
)

func setPdeathsig(*exec.Cmd) {}

const syscallTERM = syscall.SIGTERM

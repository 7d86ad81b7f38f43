//go:build !linux

package localmysql

import (
	"os/exec"
	"syscall"
)

const sigTERM = syscall.SIGTERM

// KillWithParent is a no-op where the platform has no parent-death signal.
func KillWithParent(*exec.Cmd) {}

package main

import (
	"os/exec"
	"syscall"
)

// tieToParent makes the kernel kill the child when the bench dies, however
// it dies (SIGKILL, a panic, Ctrl-C on `go run`), so no kguard is left
// listening on the bench's ports. Pdeathsig survives the exec through
// taskset. It fires when the OS thread that started the child exits; Go
// keeps its threads for the process's lifetime unless a goroutine locked to
// one exits, which the bench never does.
func tieToParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}

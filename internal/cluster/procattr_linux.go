package main

import "syscall"

// ownGroup puts a child in its own process group, so the terminal's Ctrl-C
// reaches only the cluster, which stops the children in order; and the
// kernel kills the child if the cluster dies without stopping it.
func ownGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// stopWithParent asks the kernel for SIGTERM when the process that started
// the cluster exits. `go tool task cluster` is run by task, which catches
// SIGTERM and SIGINT and passes neither on (it counts to three, then exits):
// once task is gone, the cluster stops everything as if it had the signal.
func stopWithParent() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
}

package apptest

import "syscall"

// dieWithParent makes the kernel kill the app when the test binary dies,
// even without running its cleanups (a -timeout panic, a kill).
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

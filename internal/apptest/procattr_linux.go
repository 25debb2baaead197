package apptest

import "syscall"

// DieWithParent makes the kernel kill a child (the app) when the test binary dies,
// even without running its cleanups (a -timeout panic, a kill).
func DieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// StopWithParent is DieWithParent with SIGTERM, for nginx, whose workers a
// SIGKILL would leave holding the ports.
func StopWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

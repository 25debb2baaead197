package apptest

import "syscall"

// DieWithParent makes the kernel kill a child (the app) when the test binary dies,
// even without running its cleanups (a -timeout panic, a kill).
func DieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// StopWithParent is DieWithParent for a process that must stop its own
// children: nginx's master stops its workers on SIGTERM, while a SIGKILL
// would leave them running, still holding the ports.
func StopWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

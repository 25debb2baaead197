//go:build !linux

package main

import (
	"os"
	"syscall"
	"time"
)

// ownGroup puts a child in its own process group, so the terminal's Ctrl-C
// reaches only the cluster, which stops the children in order.
func ownGroup(syscall.Signal) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// stopWithParent: only Linux can tell a process that its parent exited;
// stopWithGoTool checks instead.
func stopWithParent() {}

// stopWithGoTool stops the cluster (SIGTERM to itself) once the process
// that started it is gone: task exits at the first SIGTERM, and the
// cluster must follow. Without /proc, go above task is not watched.
func stopWithGoTool() {
	parent := os.Getppid()
	go func() {
		for os.Getppid() == parent {
			time.Sleep(time.Second)
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}()
}

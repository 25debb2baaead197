//go:build !linux

package main

import "syscall"

// ownGroup puts a child in its own process group, so the terminal's Ctrl-C
// reaches only the cluster, which stops the children in order.
func ownGroup(syscall.Signal) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// stopWithParent: only Linux can tell a process that its parent exited.
func stopWithParent() {}

// stopWithGoTool: without /proc, only task's own exit is noticed.
func stopWithGoTool() {}

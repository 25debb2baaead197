//go:build !linux

package apptest

import "syscall"

// DieWithParent: only Linux can tie a child's life to its parent's.
func DieWithParent() *syscall.SysProcAttr { return nil }

// StopWithParent: only Linux can tie a child's life to its parent's.
func StopWithParent() *syscall.SysProcAttr { return nil }

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ownGroup puts a child in its own process group, so Ctrl-C reaches only the
// cluster, which stops children in order; onParentDeath if the cluster dies.
func ownGroup(onParentDeath syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: onParentDeath}
}

// stopWithParent asks the kernel for SIGTERM when task exits: in the
// Taskfile's watch mode task exits at the first signal, before the cluster.
func stopWithParent() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
}

// stopWithGoTool stops the cluster once the go command above task is gone:
// a SIGKILL to go, the process a supervisor knows, would leave all running.
func stopWithGoTool() {
	task := os.Getppid()
	goTool := parentOf(task)
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", goTool)); err != nil || filepath.Base(exe) != "go" {
		return
	}
	go func() {
		for parentOf(task) == goTool {
			time.Sleep(time.Second)
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}()
}

// parentOf is pid's parent (0 once pid is gone), from /proc/<pid>/stat:
// "pid (comm) state ppid ...", where comm may hold spaces and parentheses.
func parentOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

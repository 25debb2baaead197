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

// ownGroup puts a child in its own process group, so the terminal's Ctrl-C
// reaches only the cluster, which stops the children in order; and the
// kernel sends the child onParentDeath if the cluster dies without
// stopping it.
func ownGroup(onParentDeath syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: onParentDeath}
}

// stopWithParent asks the kernel for SIGTERM when the process that started
// the cluster exits. `go tool task cluster` is run by task, which exits at
// the first SIGINT or SIGTERM (in the watch mode the Taskfile sets): the
// cluster then stops everything as if it had the signal.
func stopWithParent() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0)
}

// stopWithGoTool covers the process above task. Under `go tool task
// cluster`, go passes every signal to task and waits for it, so go is the
// process a supervisor knows; a SIGKILL to go would leave task, and so this
// program and all it started, running. When task's parent is the go
// command, the cluster stops (SIGTERM to itself) once go is gone: task is
// then someone else's child.
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

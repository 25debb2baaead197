//go:build unix

package main

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// Ctrl-C on `go tool task run` is a clean stop, and says so: the terminal
// sends SIGINT to the whole process group (task, the app), the app shuts
// down, and task exits 0 without "Failed to run task".
func TestTaskRunStopsCleanlyOnCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the app through task")
	}
	rs := redistest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	out := &apptest.Buffer{}
	cmd := exec.Command("go", "tool", "task", "run", "--", "-addr", addr)
	cmd.Env = append(os.Environ(), "REDIS_URL="+rs.URL())
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own group, as a terminal's foreground job
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	})

	// The first run may build task and the app: minutes on a busy machine.
	deadline := time.Now().Add(10 * time.Minute)
	for !strings.Contains(out.String(), "msg=listening") {
		select {
		case err := <-done:
			t.Fatalf("task run ended before the app listened (%v):\n%s", err, out)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app did not listen:\n%s", out)
		}
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("task run ended with %v after Ctrl-C, want exit status 0:\n%s", err, out)
		}
	case <-time.After(time.Minute):
		t.Fatalf("task run did not stop after Ctrl-C:\n%s", out)
	}
	if s := out.String(); strings.Contains(s, "Failed to run task") || !strings.Contains(s, "msg=stopped") {
		t.Errorf("after Ctrl-C, want the app's clean stop and no task failure:\n%s", s)
	}
}

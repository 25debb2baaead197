package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The master at a new start is the one in the sentinel files with the
// highest config epoch, found among the Redis ports of the previous start,
// even when the ports have changed since.
func TestLastMaster(t *testing.T) {
	sentinel := func(port, epoch int) string {
		return fmt.Sprintf("port 26385\nsentinel monitor mymaster 127.0.0.1 %d 2\nsentinel config-epoch mymaster %d\n", port, epoch)
	}
	for _, tc := range []struct {
		name      string
		prevPorts string // the redis-ports file; "" for none
		sentinels []string
		want      int
	}{
		{name: "first start", want: 0},
		{name: "after an odd number of failovers", prevPorts: "6385,6386",
			sentinels: []string{sentinel(6386, 3), sentinel(6386, 3), sentinel(6386, 3)}, want: 1},
		{name: "a sentinel that missed the last failover is outvoted by epoch", prevPorts: "6385,6386",
			sentinels: []string{sentinel(6385, 1), sentinel(6386, 2), sentinel(6386, 2)}, want: 1},
		{name: "other ports last time", prevPorts: "40001,40002",
			sentinels: []string{sentinel(40002, 1), sentinel(40002, 1), sentinel(40002, 1)}, want: 1},
		{name: "an earlier version's files: the default ports", sentinels: []string{sentinel(6386, 1)}, want: 1},
		{name: "a port from nowhere is ignored", prevPorts: "6385,6386", sentinels: []string{sentinel(7000, 9)}, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.prevPorts != "" {
				if err := os.WriteFile(filepath.Join(dir, "redis-ports"), []byte(tc.prevPorts+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for i, conf := range tc.sentinels {
				d := filepath.Join(dir, fmt.Sprintf("sentinel-%d", i+1))
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, "sentinel.conf"), []byte(conf), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c := &cluster{dir: dir}
			if got := c.lastMaster(); got != tc.want {
				t.Errorf("lastMaster = %d, want %d", got, tc.want)
			}
		})
	}
}

// Port lists are checked before anything starts; good ones get as far as
// looking for the app binary.
func TestPortFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"-redis-ports", "7001,7002", "-app-ports", "9001", "-https-port", "9443"}, true},
		{[]string{"-redis-ports", "7001"}, false},
		{[]string{"-sentinel-ports", "1,2"}, false},
		{[]string{"-app-ports", "80,x"}, false},
		{[]string{"-https-port", "99999"}, false},
	} {
		err := run(append(tc.args, "-app", filepath.Join(t.TempDir(), "none"), "-dir", t.TempDir()), io.Discard)
		gotThere := err != nil && (strings.Contains(err.Error(), "the app binary") || strings.Contains(err.Error(), "is not installed"))
		if gotThere != tc.ok {
			t.Errorf("%v: %v", tc.args, err)
		}
	}
}

// A start that fails half-way (here every instance exits at once) stops
// what it had started, Redis and the sentinels, and says why.
func TestStartFailingHalfWayStopsWhatItStarted(t *testing.T) {
	for _, b := range []string{"nginx", "redis-server", "redis-cli"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s is not installed", b)
		}
	}
	dir := t.TempDir()
	done := make(chan error, 1)
	go func() { done <- run([]string{"-dir", dir, "-app", "/bin/false", "-free-ports"}, io.Discard) }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "app1 exited at start") {
			t.Errorf("run: %v, want app1 exited at start", err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("a start that failed half-way did not return within 90 s")
	}
	for _, name := range []string{"redis-1", "redis-2", "sentinel-1"} {
		b, _ := os.ReadFile(filepath.Join(dir, "logs", name+".log"))
		if !strings.Contains(string(b), "ready to exit") && !strings.Contains(string(b), "shutdown") {
			t.Errorf("%s was not shut down:\n%s", name, b)
		}
	}
}

// With -free-ports, a process that finds its port taken (chosen free, then
// taken before it bound it) makes the cluster stop what it started and
// choose ports again, twice at most; here the instance always says so.
func TestAPortTakenAfterItWasChosenIsChosenAgain(t *testing.T) {
	for _, b := range []string{"nginx", "redis-server", "redis-cli"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s is not installed", b)
		}
	}
	dir := t.TempDir()
	app := filepath.Join(t.TempDir(), "app")
	script := "#!/bin/sh\necho 'listen tcp 127.0.0.1:1: bind: address already in use' >&2\nexit 1\n"
	if err := os.WriteFile(app, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	done := make(chan error, 1)
	go func() { done <- run([]string{"-dir", dir, "-app", app, "-free-ports"}, &out) }()
	select {
	case err := <-done:
		if !errors.Is(err, errPortTaken) {
			t.Errorf("run: %v, want %v", err, errPortTaken)
		}
	case <-time.After(3 * 90 * time.Second):
		t.Fatal("three starts that failed half-way did not return within 270 s")
	}
	if n := strings.Count(out.String(), "choosing free ports again"); n != 2 {
		t.Errorf("the cluster chose ports again %d times, want 2:\n%s", n, out.String())
	}
	b, _ := os.ReadFile(filepath.Join(dir, "logs", "redis-1.log"))
	if n := strings.Count(string(b), "ready to exit"); n != 3 {
		t.Errorf("redis-1 was shut down %d times, want once after each of the 3 starts:\n%s", n, b)
	}
}

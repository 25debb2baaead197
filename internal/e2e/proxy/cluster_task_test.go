package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// stopBound is how long every process of the cluster may take to go after
// the signal: the cluster gives each process 30 s to stop when asked before
// it kills it, so a process still there at 30 s did not stop when asked.
// (A stop takes about 2 s here, on a loaded 2-core machine.)
const stopBound = 30 * time.Second

// taskCluster is `go tool task cluster` exactly as docs/deploy.md has an
// operator run it: the real Taskfile, task and go, on free ports with its
// own -dir.
type taskCluster struct {
	t      *testing.T
	cmd    *exec.Cmd // go tool task cluster
	out    printed
	exited chan struct{}
}

// taskWorkdir is the repository as task sees it, but with its own .task
// (where the Taskfile builds the binaries), so the test replaces nothing a
// developer may be running: every entry but .git, .task and .data is a
// symlink to the repository's.
func taskWorkdir(t *testing.T) string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, e := range entries {
		if slices.Contains([]string{".git", ".task", ".data"}, e.Name()) {
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(work, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return work
}

// startTaskCluster runs `go tool task cluster -- -free-ports -dir dir` in
// work and waits until the cluster serves.
func startTaskCluster(t *testing.T, work, dir string) *taskCluster {
	t.Helper()
	cmd := exec.Command("go", "tool", "task", "cluster", "--", "-free-ports", "-dir", dir, "--", "-drain", "1s")
	cmd.Dir = work
	cmd.Env = append(apptest.Env(), "BCRYPT_COST=4")
	// go dies with the test; the cluster notices (it watches go) and stops.
	cmd.SysProcAttr = apptest.DieWithParent()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tc := &taskCluster{t: t, cmd: cmd}
	ready, exited := tc.out.follow(cmd, stdout)
	tc.exited = exited
	t.Cleanup(func() {
		// Whatever the test left running (it failed): every process below go.
		for _, p := range descendants(cmd.Process.Pid) {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		_ = cmd.Process.Kill()
		<-tc.exited
	})
	select {
	case <-ready:
	case <-tc.exited:
		t.Fatalf("go tool task cluster exited at start:\n%s", tc.output())
	case <-time.After(3 * time.Minute): // the first build of the app and task
		t.Fatalf("go tool task cluster did not serve within 3 minutes:\n%s", tc.output())
	}
	return tc
}

func (tc *taskCluster) output() string { return tc.out.String() }

// proc is a process below go, by its command name.
type proc struct {
	pid  int
	name string
}

func (p proc) String() string { return fmt.Sprintf("%s (pid %d)", p.name, p.pid) }

// stat reads /proc/<pid>/stat: "pid (comm) state ppid ...", where comm may
// hold spaces and parentheses. ok is false once pid is gone.
func stat(pid int) (name string, state byte, ppid int, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", 0, 0, false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 2 {
		return "", 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	return string(b[open+1 : end]), f[0][0], ppid, true
}

// running says whether p still runs: not gone, not a zombie (it exited;
// only its parent has not read its status yet), and not a new process
// that was given its pid.
func (p proc) running() bool {
	name, state, _, ok := stat(p.pid)
	return ok && state != 'Z' && name == p.name
}

// descendants is every process below pid, from /proc.
func descendants(pid int) []proc {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]proc{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if name, _, ppid, ok := stat(p); ok {
			children[ppid] = append(children[ppid], proc{pid: p, name: name})
		}
	}
	var all []proc
	for next := []int{pid}; len(next) > 0; {
		p := next[0]
		next = next[1:]
		for _, c := range children[p] {
			all = append(all, c)
			next = append(next, c.pid)
		}
	}
	return all
}

// processesOf is what `go tool task cluster` runs below go, checked
// against what it must be: task, the cluster program, nginx's master and
// worker, two Redis servers and three sentinels, three instances.
func (tc *taskCluster) processesOf() []proc {
	tc.t.Helper()
	procs := descendants(tc.cmd.Process.Pid)
	count := map[string]int{}
	for _, p := range procs {
		count[p.name]++
	}
	want := map[string]int{"task": 1, "cluster": 1, "nginx": 2, "redis-server": 5, "sessionlab": 3}
	for name, n := range want {
		if count[name] != n {
			tc.t.Fatalf("below go tool task cluster: %d %s, want %d (all: %v)", count[name], name, n, procs)
		}
	}
	return procs
}

// gone waits until none of procs runs, at most stopBound after since.
func gone(t *testing.T, procs []proc, since time.Time, after string) {
	t.Helper()
	for {
		alive := slices.DeleteFunc(slices.Clone(procs), func(p proc) bool { return !p.running() })
		if len(alive) == 0 {
			t.Logf("every process gone %v after %s", time.Since(since).Round(100*time.Millisecond), after)
			return
		}
		if time.Since(since) > stopBound {
			t.Fatalf("%v after %s, still running: %v", stopBound, after, alive)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// `go tool task cluster`, run as documented, serves plain HTTP only as a
// redirect to HTTPS; a SIGTERM to the go process (what systemd, a CI
// runner or `kill` sends) stops every process it started, as Ctrl-C does;
// a second start on the same data serves the same sessions; and a SIGKILL
// to go (a supervisor's last resort) leaves no process behind either.
func TestTaskClusterStopsOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx is not installed (apt-get install nginx; .ci/run does)")
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: the test finds the cluster's processes there")
	}
	work, dir := taskWorkdir(t), filepath.Join(t.TempDir(), "cluster")
	tc := startTaskCluster(t, work, dir)
	c := &cluster{t: t, dir: dir}
	c.readState()
	hc := c.client()

	// Plain HTTP, as a browser first tries a typed address: a redirect to
	// the same path over HTTPS, and no session (nothing reached the app).
	plain := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var state struct{ HTTP string } // cluster.json's plain-HTTP address
	if b, err := os.ReadFile(filepath.Join(dir, "cluster.json")); err != nil || json.Unmarshal(b, &state) != nil || state.HTTP == "" {
		t.Fatalf("cluster.json names no plain-HTTP address (%v):\n%s", err, b)
	}
	resp, err := plain.Get(state.HTTP + "count?from=http")
	if err != nil {
		t.Fatalf("GET %s: %v", state.HTTP, err)
	}
	resp.Body.Close()
	if want := c.state.URL + "count?from=http"; (resp.StatusCode != http.StatusMovedPermanently && resp.StatusCode != http.StatusPermanentRedirect) ||
		resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %d to %q, want 301 or 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if sc := resp.Header.Values("Set-Cookie"); len(sc) > 0 {
		t.Errorf("plain HTTP set cookies %q, want none", sc)
	}

	for want := 1; want <= 3; want++ {
		if n, _ := c.count(hc); n != want {
			t.Fatalf("count %d answered %d", want, n)
		}
	}

	// SIGTERM to go, the process the operator started, alone (not its group).
	procs := tc.processesOf()
	sent := time.Now()
	if err := tc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	gone(t, procs, sent, "SIGTERM to go tool task cluster")
	<-tc.exited
	if code := tc.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("go tool task cluster exited with %d after SIGTERM, want 0", code)
	}
	if out := tc.output(); !strings.Contains(out, "the cluster stopped") {
		t.Errorf("the cluster did not say it stopped:\n%s", out)
	}

	// It starts again on the same data (and certificate; other ports): the
	// same browser counts on.
	tc = startTaskCluster(t, work, dir)
	c.readState()
	if n, _ := c.count(hc); n != 4 {
		t.Errorf("after the second start the browser's count is %d, want 4 (its 3 kept)", n)
	}

	// SIGKILL to go: task, orphaned, would keep the cluster running; the
	// cluster notices that go is gone and stops all it started, and task
	// ends with it.
	procs = tc.processesOf()
	sent = time.Now()
	if err := tc.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-tc.exited
	gone(t, procs, sent, "SIGKILL to go")
}

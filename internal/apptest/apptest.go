// Package apptest builds the sessionlab binary once and runs it as real
// processes for tests.
package apptest

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the app into dir and returns the binary's path.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "sessionlab")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/sessionlab/sessionlab")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apptest: go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Process is one running app.
type Process struct {
	tb   testing.TB
	cmd  *exec.Cmd
	URL  string // http://127.0.0.1:port
	Addr string // 127.0.0.1:port

	mu     sync.Mutex
	log    strings.Builder
	exited chan struct{}
	err    error
}

// listening finds the address in the "listening" line, text or JSON.
var listening = regexp.MustCompile(`msg=listening addr=(\S+)|"msg":"listening","addr":"([^"]+)"`)

// Start runs the binary with args (plus -addr 127.0.0.1:0 unless args set
// -addr) and waits until it listens. It is stopped when the test ends.
func Start(tb testing.TB, bin string, args ...string) *Process {
	tb.Helper()
	hasAddr := false
	for _, a := range args {
		if a == "-addr" || strings.HasPrefix(a, "-addr=") {
			hasAddr = true
		}
	}
	if !hasAddr {
		args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	}
	p := &Process{tb: tb, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	// No drain period: Stop is quick; a test of the drain passes -drain.
	p.cmd.Env = append(Env(), "BCRYPT_COST=4", "DRAIN=0")
	p.cmd.SysProcAttr = DieWithParent()
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("apptest: start %s: %v", bin, err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1] + m[2]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case a := <-addr:
		p.Addr, p.URL = a, "http://"+a
	case <-p.exited:
		tb.Fatalf("apptest: app exited before listening: %v\n%s", p.err, p.Log())
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		tb.Fatalf("apptest: app did not listen within 15s\n%s", p.Log())
	}
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("app log (%s):\n%s", p.Addr, p.Log())
		}
	})
	return p
}

// PID is the process id (for benchmarks that watch its CPU and memory).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Log is everything the process printed so far.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Stop sends SIGTERM and waits for a clean exit.
func (p *Process) Stop() {
	p.tb.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			p.tb.Fatalf("apptest: app exited with %v after SIGTERM\n%s", p.err, p.Log())
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		p.tb.Fatalf("apptest: app did not stop within 20s of SIGTERM\n%s", p.Log())
	}
}

// Kill ends the process at once, if it still runs.
func (p *Process) Kill() {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// Exited is closed when the process has ended.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Client is an HTTP client with its own cookie jar that does not follow
// redirects, so tests see each 303 and each Set-Cookie.
func Client(tb testing.TB) *http.Client {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// AppSettings are the environment variables the app reads (main_test.go
// checks this list against the app's flags).
var AppSettings = []string{"ADDR", "REDIS_URL", "INSTANCE", "COOKIE_SECURE", "SESSION_LIFETIME", "SESSION_IDLE",
	"SHUTDOWN_TIMEOUT", "BCRYPT_COST", "LOG_LEVEL", "STORE", "DEBUG_ADDR", "TRUSTED_PROXIES", "DEMO_CONTROLS",
	"REDIS_CA", "REDIS_CERT", "REDIS_KEY", "REDIS_SENTINEL_USER", "REDIS_SENTINEL_PASSWORD", "NEW_SESSIONS", "DRAIN", "LOG_FORMAT", "ACCESS_LOG", "READY_WITHOUT_REDIS", "REDIS_MANAGED", "LAB", "CLASS_SIZE", "REDIS_POOL"}

// Env is the test's environment without AppSettings: a developer's
// STORE=memory or DEBUG_ADDR must not change what a test runs.
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(AppSettings, name) {
			env = append(env, kv)
		}
	}
	return env
}

package bench

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// target is one server under load: sessionlab itself, or the server named
// by COMPARE_URL (the tutorial's Express app, say).
type target struct {
	name                   string
	base                   string // http://host:port
	countPath, profilePath string
	cookieName             string
	cookie                 string // name=value of the logged-in session
	login                  func(c *http.Client) (*http.Response, error)
	sessionKey             func(cookieValue string) string // its Redis key ("" when unknown)

	redis     *redisProbe // nil when its Redis is unknown
	server    *proc       // nil when its pid is unknown
	redisProc *proc
	binary    string // the built app, for pprof (sessionlab only)
}

var httpClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// logIn logs a fresh session in and returns its "name=value" cookie.
func (t *target) logIn(tb testing.TB) string {
	tb.Helper()
	resp, err := t.login(httpClient)
	if err != nil {
		tb.Fatalf("%s: log in: %v", t.name, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == t.cookieName && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	tb.Fatalf("%s: log in: HTTP %d and no %q cookie\n%s", t.name, resp.StatusCode, t.cookieName, body)
	return ""
}

// get sends one GET with an optional cookie and returns status and body.
func (t *target) get(tb testing.TB, path, cookie string) (int, string) {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, t.base+path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		tb.Fatalf("%s: GET %s: %v", t.name, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mustGet200 checks a route answers 200 for a cookie before load is put on it.
func (t *target) mustGet200(tb testing.TB, path, cookie string) {
	tb.Helper()
	if code, body := t.get(tb, path, cookie); code != http.StatusOK {
		tb.Fatalf("%s: GET %s: HTTP %d, want 200\n%.500s", t.name, path, code, body)
	}
}

// startApp builds sessionlab and runs it on its own redis-server (no
// persistence, as the Express anchor is measured), logs at warn so request
// logs do not count.
func startApp(tb testing.TB, debugAddr string) *target {
	tb.Helper()
	rs := redistest.Start(tb, "--appendonly", "no")
	bin, err := apptest.Build(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	// Not apptest.Start: at -log-level warn the app prints no "listening"
	// line to wait for, so wait for /healthz instead.
	addr := "127.0.0.1:" + strconv.Itoa(freePort(tb))
	// The limit on new sessions per address stays on, as in production
	// (the no-cookie rows pay for counting it), at a limit this load from
	// one address never reaches.
	args := []string{"-addr", addr, "-redis", rs.URL(), "-log-level", "warn", "-new-sessions", "1000000000"}
	if debugAddr != "" {
		args = append(args, "-debug-addr", debugAddr)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(apptest.Env(), "BCRYPT_COST=4")
	logf, _ := os.Create(filepath.Join(tb.TempDir(), "app.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", bin, err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := waitHTTP("http://"+addr+"/healthz", logf.Name()); err != nil {
		tb.Fatal(err)
	}
	probe := newProbe(tb, rs.URL())
	t := &target{
		name: "sessionlab", base: "http://" + addr, countPath: "/count", profilePath: "/profile", cookieName: "session",
		sessionKey: func(v string) string { return "sess:" + v },
		redis:      probe, server: &proc{pid: cmd.Process.Pid}, redisProc: &proc{pid: probe.pid()},
	}
	n := 0
	t.login = func(c *http.Client) (*http.Response, error) {
		n++
		form := url.Values{"username": {fmt.Sprintf("bench%d", n)}, "password": {"bench-password"}}
		return c.PostForm(t.base+"/register", form)
	}
	t.binary = bin
	return t
}

// compareTarget is the server named by COMPARE_URL, with cookie name, paths
// and login request from the environment (defaults fit the Express anchor).
func compareTarget(tb testing.TB, getenv func(string) string) *target {
	tb.Helper()
	base := strings.TrimSuffix(getenv("COMPARE_URL"), "/")
	t := &target{
		name:        cmp.Or(getenv("COMPARE_NAME"), "compare"),
		base:        base,
		countPath:   cmp.Or(getenv("COMPARE_COUNT_PATH"), "/count"),
		profilePath: cmp.Or(getenv("COMPARE_PROFILE_PATH"), "/profile"),
		cookieName:  cmp.Or(getenv("COMPARE_COOKIE"), "connect.sid"),
		sessionKey:  expressSessionKey,
	}
	loginPath := cmp.Or(getenv("COMPARE_LOGIN_PATH"), "/login")
	data := cmp.Or(getenv("COMPARE_LOGIN_DATA"), "username=alice&password=secret")
	ctype := cmp.Or(getenv("COMPARE_LOGIN_CONTENT_TYPE"), "application/x-www-form-urlencoded")
	t.login = func(c *http.Client) (*http.Response, error) {
		return c.Post(t.base+loginPath, ctype, strings.NewReader(data))
	}
	if u := getenv("COMPARE_REDIS_URL"); u != "" {
		t.redis = newProbe(tb, u)
		t.redisProc = &proc{pid: t.redis.pid()}
	}
	if pid, err := strconv.Atoi(getenv("COMPARE_PID")); err == nil {
		t.server = &proc{pid: pid}
	}
	return t
}

// expressSessionKey maps express-session's signed cookie
// (s%3A<id>.<signature>) to connect-redis's key, sess:<id>; any other
// cookie value is taken as the token itself (sess:<value>, as sessionlab).
func expressSessionKey(v string) string {
	v, _ = url.QueryUnescape(v)
	id, ok := strings.CutPrefix(v, "s:")
	if !ok {
		return "sess:" + v
	}
	if i := strings.LastIndexByte(id, '.'); i > 0 {
		id = id[:i]
	}
	return "sess:" + id
}

// startExpress runs the tutorial's Express app from dir (the anchor in
// shared/anchors/express-seed): copied to a cache folder, `npm ci` once,
// then `node server.js` on a free port with its own redis-server.
//
// It reports an error instead of failing: the comparison is optional, and
// the rest of the benchmark still runs without it.
func startExpress(tb testing.TB, dir string) (base string, redisURL string, pid int, err error) {
	tb.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		return "", "", 0, fmt.Errorf("COMPARE_EXPRESS needs node and npm (apt-get install nodejs npm)")
	}
	work := filepath.Join(os.TempDir(), "sessionlab-bench-express")
	lock, _ := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	have, _ := os.ReadFile(filepath.Join(work, "package-lock.json"))
	if _, err := os.Stat(filepath.Join(work, "node_modules")); err != nil || string(lock) != string(have) {
		_ = os.RemoveAll(work)
		if out, err := exec.Command("cp", "-r", dir, work).CombinedOutput(); err != nil {
			return "", "", 0, fmt.Errorf("copy %s: %v\n%s", dir, err, out)
		}
		_ = exec.Command("chmod", "-R", "u+w", work).Run()
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			_ = os.RemoveAll(work)
			return "", "", 0, fmt.Errorf("npm ci in %s: %v\n%s", work, err, out)
		}
	}
	rs := redistest.Start(tb, "--appendonly", "no")
	port := freePort(tb)
	cmd := exec.Command("node", "server.js")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "REDIS_URL=redis://"+rs.Addr())
	logf, _ := os.Create(filepath.Join(tb.TempDir(), "express.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", "", 0, fmt.Errorf("start node: %v", err)
	}
	tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitHTTP("http://"+addr+"/profile", logf.Name()); err != nil {
		return "", "", 0, err
	}
	return "http://" + addr, rs.URL(), cmd.Process.Pid, nil
}

// waitHTTP waits until url answers at all (any status); the error holds
// the server's log.
func waitHTTP(url, logFile string) error {
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logFile)
			return fmt.Errorf("%s did not answer within 30s\n%s", url, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

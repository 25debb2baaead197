package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// Slow clients cannot hold connections open: every server timeout is set.
func TestServerTimeoutsAreSet(t *testing.T) {
	srv := newServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout,
		"ReadTimeout":       srv.ReadTimeout,
		"WriteTimeout":      srv.WriteTimeout,
		"IdleTimeout":       srv.IdleTimeout,
	} {
		if d <= 0 || d > 5*time.Minute {
			t.Errorf("%s = %v, want set (and at most minutes)", name, d)
		}
	}
	if srv.ReadHeaderTimeout > srv.ReadTimeout {
		t.Errorf("ReadHeaderTimeout %v is longer than ReadTimeout %v", srv.ReadHeaderTimeout, srv.ReadTimeout)
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d", srv.MaxHeaderBytes)
	}
}

func TestSecurityConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	t.Run("defaults: 30 min idle, 24 h absolute, plain cookie, no trusted proxies", func(t *testing.T) {
		c, err := parseConfig([]string{"sessionlab"}, env(), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.idle != 30*time.Minute || c.lifetime != 24*time.Hour || c.cookieSecure || len(c.trustedProxies) != 0 {
			t.Errorf("got idle %v, lifetime %v, secure %v, proxies %v", c.idle, c.lifetime, c.cookieSecure, c.trustedProxies)
		}
	})
	t.Run("from the environment", func(t *testing.T) {
		c, err := parseConfig([]string{"sessionlab"}, env("SESSION_IDLE", "5m", "SESSION_LIFETIME", "2h",
			"COOKIE_SECURE", "true", "TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1"), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.idle != 5*time.Minute || c.lifetime != 2*time.Hour || !c.cookieSecure || len(c.trustedProxies) != 2 {
			t.Errorf("got idle %v, lifetime %v, secure %v, proxies %v", c.idle, c.lifetime, c.cookieSecure, c.trustedProxies)
		}
	})
	t.Run("flags win over the environment", func(t *testing.T) {
		c, err := parseConfig([]string{"sessionlab", "-idle", "1m", "-trusted-proxies", "", "-cookie-secure=false"},
			env("SESSION_IDLE", "5m", "TRUSTED_PROXIES", "10.0.0.0/8", "COOKIE_SECURE", "1"), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.idle != time.Minute || c.cookieSecure || len(c.trustedProxies) != 0 {
			t.Errorf("got idle %v, secure %v, proxies %v", c.idle, c.cookieSecure, c.trustedProxies)
		}
	})
	for _, args := range [][]string{
		{"-trusted-proxies", "not-a-network"},
		{"-lifetime", "0s"},
		{"-idle", "-1m"},
	} {
		t.Run("refuses "+strings.Join(args, " "), func(t *testing.T) {
			if _, err := parseConfig(append([]string{"sessionlab"}, args...), env(), io.Discard); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// The session pool's bound: redisconn.DefaultPoolSize, REDIS_POOL, or
// -redis-pool over both; a pool of no connection could serve nothing.
func TestRedisPoolConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  string
		want int
	}{
		{"default", nil, "", redisconn.DefaultPoolSize},
		{"from the environment", nil, "16", 16},
		{"the flag wins", []string{"-redis-pool", "8"}, "16", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(append([]string{"sessionlab"}, tc.args...), func(k string) string {
				if k == "REDIS_POOL" {
					return tc.env
				}
				return ""
			}, io.Discard)
			if err != nil || c.redis.PoolSize != tc.want {
				t.Errorf("pool size %d, %v; want %d", c.redis.PoolSize, err, tc.want)
			}
		})
	}
	if _, err := parseConfig([]string{"sessionlab", "-redis-pool", "0"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("-redis-pool 0 accepted")
	}
}

// An environment value that does not parse stops the start with one line
// naming the variable and the value, instead of silently giving the default
// (COOKIE_SECURE=yes used to give a cookie without Secure).
func TestEnvironmentValuesThatDoNotParseStopTheStart(t *testing.T) {
	for name, value := range map[string]string{
		"COOKIE_SECURE": "yes", "DEMO_CONTROLS": "on", "ACCESS_LOG": "enabled",
		"SESSION_LIFETIME": "1 day", "SESSION_IDLE": "30", "SHUTDOWN_TIMEOUT": "10 s",
		"NEW_SESSIONS": "many", "BCRYPT_COST": "12.5", "LOG_LEVEL": "verbose", "LOG_FORMAT": "xml",
		"REDIS_POOL": "lots",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseConfig([]string{"sessionlab"}, func(k string) string {
				if k == name {
					return value
				}
				return ""
			}, io.Discard)
			if err == nil {
				t.Fatalf("%s=%q accepted", name, value)
			}
			if msg := err.Error(); !strings.Contains(msg, name) || !strings.Contains(msg, value) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %s and %q", msg, name, value)
			}
		})
	}
}

// Read-only requests refresh a session's expiry at most every tenth of the
// idle timeout, and at least every five minutes.
// With no Redis at the URL, run ends at once with one line that names the
// URL without its password.
func TestRunWithoutRedisSaysSoInOneLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	err = run(t.Context(), []string{"sessionlab", "-redis", "redis://:s3cret@" + addr + "/0", "-addr", "127.0.0.1:0"},
		func(string) string { return "" }, io.Discard)
	if err == nil {
		t.Fatal("run succeeded without Redis")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Contains(msg, "s3cret") || !strings.Contains(msg, addr) {
		t.Errorf("error %q: want one line naming %s, without the password", msg, addr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run took %v to give up", d)
	}
}

// The line that says why the process stops follows -log-format: with json,
// a log pipeline that parses every line as JSON keeps it (systemd's unit in
// docs/ sets LOG_FORMAT=json, and its instances exit 1 while Redis is not up
// yet); with text it is "sessionlab: <cause>".
func TestTheLineThatEndsTheProcessFollowsTheLogFormat(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			err := run(t.Context(), []string{"sessionlab", "-redis", "redis://" + addr + "/0", "-addr", "127.0.0.1:0",
				"-log-format", format}, func(string) string { return "" }, io.Discard)
			if err == nil {
				t.Fatal("run succeeded without Redis")
			}
			var out strings.Builder
			reportFailure(&out, err)
			line, ok := strings.CutSuffix(out.String(), "\n")
			if !ok || strings.Contains(line, "\n") {
				t.Fatalf("%q: want one line", out.String())
			}
			cause := "no Redis answers at redis://" + addr + "/0"
			if format == "text" {
				if !strings.HasPrefix(line, "sessionlab: "+cause) {
					t.Errorf("%q: want sessionlab: %s...", line, cause)
				}
				return
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("-log-format json, and the last line is not JSON: %q", line)
			}
			if msg, _ := rec["err"].(string); rec["level"] != "ERROR" || !strings.HasPrefix(msg, cause) {
				t.Errorf("%v: want level ERROR and err %s...", rec, cause)
			}
		})
	}
}

// The tests start the app without the developer's settings; they must know
// every variable the app reads, as its flags name them.
func TestAppTestKnowsEverySetting(t *testing.T) {
	var usage strings.Builder
	if _, err := parseConfig([]string{"sessionlab", "-h"}, func(string) string { return "" }, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	var read []string
	for _, m := range regexp.MustCompile(`\(env ([A-Z_]+)`).FindAllStringSubmatch(usage.String(), -1) {
		read = append(read, m[1])
	}
	slices.Sort(read)
	known := slices.Sorted(slices.Values(apptest.AppSettings))
	if len(read) == 0 || !slices.Equal(read, known) {
		t.Errorf("the app reads %v; apptest.AppSettings has %v", read, known)
	}
}

// The README's configuration table names every flag, each with the
// environment variable -h gives it: an operator reads the table, not the
// source.
func TestREADMEConfigurationTableListsEveryFlag(t *testing.T) {
	var usage strings.Builder
	if _, err := parseConfig([]string{"sessionlab", "-h"}, func(string) string { return "" }, &usage); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	envOf := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  -(\S+)[^\n]*\n\s+[^\n]*\(env ([A-Z_]+)`).FindAllStringSubmatch(usage.String(), -1) {
		envOf[m[1]] = m[2]
	}
	if len(envOf) == 0 {
		t.Fatalf("no flag with its variable in -h:\n%s", usage.String())
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	inTable := map[string]bool{}
	code := regexp.MustCompile("`([^`]+)`")
	for _, row := range regexp.MustCompile("(?m)^\\| `-.*$").FindAllString(string(readme), -1) {
		cells := strings.Split(row, " | ")
		if len(cells) < 3 {
			t.Errorf("README row %q: want flag | env | default | ...", row)
			continue
		}
		flags, envs := code.FindAllStringSubmatch(cells[0], -1), code.FindAllStringSubmatch(cells[1], -1)
		if len(flags) != len(envs) {
			t.Errorf("README row %q: %d flags, %d variables", row, len(flags), len(envs))
			continue
		}
		for i, f := range flags {
			name := strings.TrimPrefix(f[1], "-")
			inTable[name] = true
			if want, ok := envOf[name]; !ok {
				t.Errorf("README lists -%s, which -h does not know", name)
			} else if envs[i][1] != want {
				t.Errorf("README gives -%s the variable %s; -h says %s", name, envs[i][1], want)
			}
		}
	}
	for name, env := range envOf {
		if !inTable[name] {
			t.Errorf("README's configuration table lacks -%s (env %s)", name, env)
		}
	}
}

// At start-up, a Redis whose maxmemory-policy may delete the app's keys is
// named in a warning that says to use noeviction.
func TestRunWarnsOfAnEvictingMemoryPolicy(t *testing.T) {
	rs := redistest.Start(t, "--maxmemory-policy", "allkeys-lru")
	_, out := startRun(t, "-redis", rs.URL())
	if !regexp.MustCompile(`level=WARN msg=".*allkeys-lru.*set maxmemory-policy noeviction"`).MatchString(out.String()) {
		t.Errorf("no warning naming allkeys-lru and noeviction:\n%s", out.String())
	}
}

// run wires the App with handlers.New, as the handlers tests do: its Redis
// panel shows session keys cut, never a whole token, and its cookie is the
// one the tests check.
func TestRunWiresTheAppAsTheTestsDo(t *testing.T) {
	rs := redistest.Start(t)
	url, _ := startRun(t, "-redis", rs.URL(), "-bcrypt-cost", "4")
	c := apptest.Client(t)
	resp, err := c.PostForm(url+"/register", map[string][]string{"username": {"wire"}, "password": {"wire-password"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var token string
	for _, ck := range resp.Cookies() {
		if ck.Name == "session" && ck.HttpOnly {
			token = ck.Value
		}
	}
	if resp.StatusCode != http.StatusSeeOther || token == "" {
		t.Fatalf("register: %d, cookies %v; want 303 and an httpOnly session cookie", resp.StatusCode, resp.Cookies())
	}
	resp, err = c.Get(url + "/count")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if cut := "sess:" + token[:6] + "…"; !strings.Contains(string(body), cut) {
		t.Errorf("the count page's Redis trace does not name %s", cut)
	}
	if strings.Contains(string(body), token) {
		t.Error("the count page holds the whole session token: the trace's keys are not cut")
	}
}

// startRun runs the app as main does, on a free port, until the test ends;
// it returns the app's URL and its log.
func startRun(t *testing.T, args ...string) (string, *apptest.Buffer) {
	t.Helper()
	url, out, stop := runStoppable(t, args...)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return url, out
}

// runStoppable runs the app as main does, on a free port; stop ends it as
// Ctrl-C does and returns what run returned. Stop it before the test ends.
func runStoppable(t *testing.T, args ...string) (url string, out *apptest.Buffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	out = &apptest.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"sessionlab", "-addr", "127.0.0.1:0"}, args...), func(string) string { return "" }, out)
	}()
	stop = func() error {
		cancel()
		return <-done
	}
	listening := regexp.MustCompile(`msg=listening addr=(\S+)`)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			return "http://" + m[1], out, stop
		}
	}
	_ = stop()
	t.Fatalf("run did not listen:\n%s", out.String())
	return "", nil, nil
}

// A shutdown writes the tally lines still pending (here two cross-origin
// requests blocked after the line the first one wrote), before "stopped":
// the last minute before the exit is not lost. Before, they were never
// written.
func TestShutdownWritesThePendingTallyLines(t *testing.T) {
	rs := redistest.Start(t)
	url, out, stop := runStoppable(t, "-redis", rs.URL())
	for range 3 {
		req, _ := http.NewRequest(http.MethodPost, url+"/logout", nil)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-site POST /logout: %d, want 403", resp.StatusCode)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(out.String()) {
		if strings.Contains(line, `msg="cross-origin request blocked"`) {
			lines = append(lines, line)
		}
		if strings.Contains(line, "msg=stopped") {
			break
		}
	}
	if len(lines) != 2 || !strings.Contains(lines[0], " blocked=1 ") || !strings.Contains(lines[1], " blocked=2 ") {
		t.Errorf("before \"stopped\": %d cross-origin lines, want blocked=1 at once and blocked=2 at the shutdown:\n%s", len(lines), out.String())
	}
	// A line counts many requests: it names the latest one's id, not one as its own.
	for _, l := range lines {
		if !strings.Contains(l, " last_request_id=") || strings.Contains(l, " request_id=") {
			t.Errorf("want last_request_id= and no request_id=:\n%s", l)
		}
	}
}

// A restart re-runs the binary with the same flags, on the address the
// process actually listened on (an -addr of port 0 would pick a new port).
func TestWithAddr(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"app"}, []string{"app", "-addr", "127.0.0.1:4000"}},
		{[]string{"app", "-addr", "127.0.0.1:0", "-store", "memory"}, []string{"app", "-addr", "127.0.0.1:4000", "-store", "memory"}},
		{[]string{"app", "--addr=:0", "-demo-controls", "-instance", "a"}, []string{"app", "-addr", "127.0.0.1:4000", "-demo-controls", "-instance", "a"}},
		{[]string{"app", "-instance", "addr", "-addr", "x", "-addr=y"}, []string{"app", "-addr", "127.0.0.1:4000", "-instance", "addr"}},
	} {
		if got := withAddr(tc.in, "127.0.0.1:4000"); !slices.Equal(got, tc.want) {
			t.Errorf("withAddr(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The start-up log gives a URL a terminal makes clickable.
func TestBrowserURL(t *testing.T) {
	for addr, want := range map[string]string{
		"[::]:8080":      "http://localhost:8080/",
		"0.0.0.0:8081":   "http://localhost:8081/",
		"127.0.0.1:4000": "http://127.0.0.1:4000/",
		"[::1]:4000":     "http://[::1]:4000/",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := browserURL(a); got != want {
			t.Errorf("browserURL(%s) = %q, want %q", addr, got, want)
		}
	}
}

package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/requestlog"
)

// With -cookie-secure the app is HTTPS-only, and says so with HSTS; never
// to a loopback host, where the pin would force HTTPS on every local port,
// and never without -cookie-secure (plain HTTP must stay reachable).
func TestHSTSOnlyWithSecureCookieAndNotOnLoopback(t *testing.T) {
	secure := newTestApp(t, func(a *App) { a.Sessions.Cookie = SessionCookie(true) })
	plain := newTestAppOn(t, secure.redis)
	for _, tc := range []struct {
		name string
		app  *testApp
		host string
		want string
	}{
		{"secure cookie, public host", secure, "sessions.example.com", hstsValue},
		{"secure cookie, public host and port", secure, "sessions.example.com:8443", hstsValue},
		{"secure cookie, localhost", secure, "localhost:8443", ""},
		{"secure cookie, 127.0.0.1", secure, "127.0.0.1:8443", ""},
		{"secure cookie, ::1", secure, "[::1]:8443", ""},
		{"plain cookie, public host", plain, "sessions.example.com", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/login", "/healthz", "/no-such-page"} {
				req, _ := http.NewRequest(http.MethodGet, tc.app.srv.URL+path, nil)
				req.Host = tc.host
				r := tc.app.do(tc.app.client(), req)
				if got := r.header.Get("Strict-Transport-Security"); got != tc.want {
					t.Errorf("%s: Strict-Transport-Security %q, want %q", path, got, tc.want)
				}
			}
		})
	}
	if hstsValue != "max-age=31536000" {
		t.Errorf("HSTS %q: a year, no includeSubDomains", hstsValue)
	}
}

// A request id from a client that is not a trusted proxy is replaced; one
// that could forge a log line or a header is refused even from a proxy.
func TestRequestIDIsKeptOnlyFromATrustedProxy(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.TrustedProxies, _ = ParseTrustedProxies("127.0.0.1/32") })
	untrusted := newTestAppOn(t, ta.redis)
	for _, tc := range []struct {
		name string
		app  *testApp
		sent string
		keep bool
	}{
		{"trusted proxy", ta, "nginx-7f3a9c", true},
		{"trusted proxy, id with a space", ta, "two words", false},
		{"trusted proxy, id too long", ta, strings.Repeat("x", 200), false},
		{"untrusted client", untrusted, "nginx-7f3a9c", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.app.get(tc.app.client(), "/healthz", "X-Request-Id", tc.sent)
			got := r.header.Get("X-Request-Id")
			if (got == tc.sent) != tc.keep || got == "" {
				t.Errorf("sent %q, answered %q; kept: want %v", tc.sent, got, tc.keep)
			}
		})
	}
}

// -ready-without-redis: while Redis cannot serve, /readyz still answers 200
// (the body names the trouble), so a load balancer in front of instances
// that share one Redis keeps them and users see the app's own 503 page;
// without it, /readyz is 503. Pages are 503 either way.
func TestReadyWithoutRedisKeepsReadinessThroughAnOutage(t *testing.T) {
	shared := newTestApp(t, func(a *App) { a.ReadyWithoutRedis = true })
	strict := newTestAppOn(t, shared.redis)
	for _, ta := range []*testApp{shared, strict} {
		if r := ta.get(ta.client(), "/readyz"); r.status != http.StatusOK || !strings.HasPrefix(r.body, "ready") {
			t.Fatalf("readyz with Redis up: %d %q", r.status, r.body)
		}
	}
	shared.redis.Stop()
	r := shared.get(shared.client(), "/readyz")
	if r.status != http.StatusOK || !strings.Contains(r.body, "redis unavailable") {
		t.Errorf("-ready-without-redis, Redis stopped: readyz %d %q, want 200 naming the trouble", r.status, r.body)
	}
	if r := strict.get(strict.client(), "/readyz"); r.status != http.StatusServiceUnavailable {
		t.Errorf("default, Redis stopped: readyz %d, want 503", r.status)
	}
	if r := shared.get(shared.client(), "/count"); r.status != http.StatusServiceUnavailable {
		t.Errorf("-ready-without-redis, Redis stopped: /count %d, want the app's 503", r.status)
	}
}

// A request that matches a route is counted, and logged, under that route's
// pattern whichever layer answers it: the cross-origin check, the body limit,
// the session load when Redis is hung (the request's budget runs out) or
// stopped. "none" is for requests no route matches (404, 405), as
// docs/deploy.md says.
func TestRequestsAreCountedUnderTheRouteThatMatched(t *testing.T) {
	logs := &apptest.Buffer{}
	ta := newTestApp(t, func(a *App) {
		a.AccessLog = true
		a.Log = requestlog.NewLogger(logs, "text", slog.LevelInfo) // as main: request_id on each line
	})
	c := ta.client()
	ta.register(c, "gus", "gus-password")
	big := url.Values{"username": {strings.Repeat("g", maxFormBytes)}, "password": {"gus-password"}}
	for _, tc := range []struct {
		name          string
		before        func()
		send          func() response
		status        int
		method, route string
	}{
		{"cross-origin POST refused", nil, func() response {
			return ta.post(c, "/logout", nil, "Sec-Fetch-Site", "cross-site")
		}, http.StatusForbidden, "POST", "/logout"},
		{"body over the limit", nil, func() response { return ta.post(ta.client(), "/login", big) },
			http.StatusRequestEntityTooLarge, "POST", "/login"},
		{"no route", nil, func() response { return ta.get(c, "/no-such-page") }, http.StatusNotFound, "GET", "none"},
		{"no route for the method", nil, func() response {
			req, _ := http.NewRequest(http.MethodDelete, ta.srv.URL+"/count", nil)
			return ta.do(c, req)
		}, http.StatusMethodNotAllowed, "DELETE", "none"},
		{"Redis hung: the session load runs out of budget", ta.redis.Pause, func() response {
			defer ta.redis.Resume()
			return ta.get(c, "/count")
		}, http.StatusServiceUnavailable, "GET", "/count"},
		{"Redis stopped: the session load fails", ta.redis.Stop, func() response { return ta.get(c, "/count") },
			http.StatusServiceUnavailable, "GET", "/count"},
		{"Redis stopped: login-only page", nil, func() response { return ta.get(c, "/profile") },
			http.StatusServiceUnavailable, "GET", "/profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			counted := func(route string) int {
				method := tc.method
				if route == "none" {
					method = "" // one series for all unmatched requests
				}
				return requestsCounted(t, ta, method, route, tc.status)
			}
			was, wasNone := counted(tc.route), counted("none")
			r := tc.send()
			if r.status != tc.status {
				t.Fatalf("status %d, want %d\n%s", r.status, tc.status, r.body)
			}
			// observe counts and logs once the response is out.
			id := r.header.Get("X-Request-Id")
			waitFor(t, "the access log line", func() bool { return strings.Contains(logs.String(), "request_id="+id) })
			if got := counted(tc.route) - was; got != 1 {
				t.Errorf("%s route=%q code=%d counted %d times, want once\n%s", tc.method, tc.route, tc.status, got,
					ta.operator("/metrics").body)
			}
			if got := counted("none") - wasNone; tc.route != "none" && got != 0 {
				t.Errorf("route=\"none\" code=%d counted %d times, want 0", tc.status, got)
			}
			want := fmt.Sprintf("msg=request method=%s route=%s status=%d ", tc.method, tc.route, tc.status)
			for line := range strings.Lines(logs.String()) {
				if strings.Contains(line, "request_id="+id) && strings.Contains(line, "msg=request ") &&
					!strings.Contains(line, want) {
					t.Errorf("access log line %q, want %q", line, want)
				}
			}
		})
	}
}

// requestsCounted is sessionlab_http_requests_total for method, route and
// code, as /metrics shows it (0 before the first).
func requestsCounted(t *testing.T, ta *testApp, method, route string, code int) int {
	t.Helper()
	sample := fmt.Sprintf("sessionlab_http_requests_total{code=\"%d\",method=\"%s\",route=\"%s\"} ", code, method, route)
	for line := range strings.Lines(ta.operator("/metrics").body) {
		if v, ok := strings.CutPrefix(line, sample); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	return 0
}

// Every line about one request names its route as the access log does (the
// pattern, "none" when no route matched), never its path: an operator
// groups failures by route, and a path is the client's to write; it can hold
// anything, a whole session token included. A line a minute that stands for
// many requests names the routes they took (top=, method and pattern) or
// marks the route of the latest (last_route=).
func TestRequestLinesNameTheRouteNeverThePath(t *testing.T) {
	for _, tc := range []struct {
		name        string
		send        func(t *testing.T, ta *testApp, c *http.Client, path string)
		path        func(token string) string
		line, route string // route: the field that names it
	}{
		{"Redis stopped, a route's value in the path", func(t *testing.T, ta *testApp, c *http.Client, path string) {
			ta.redis.Stop()
			ta.post(c, path, nil)
		}, revokePath, `msg="Redis cannot serve"`, `top="POST /sessions/{id}/revoke (1)"`},
		{"Redis stopped, a path no route matches", func(t *testing.T, ta *testApp, c *http.Client, path string) {
			ta.redis.Stop()
			ta.get(c, path)
		}, func(token string) string { return "/" + token }, `msg="Redis cannot serve"`, `top="none (1)"`},
		{"a Redis error the app does not expect (500)", func(t *testing.T, ta *testApp, c *http.Client, path string) {
			ta.redis.MustDo("ACL", "SETUSER", "default", "-get") // the session's load fails with NOPERM
			ta.post(c, path, nil)
		}, revokePath, `msg="request failed"`, "route=/sessions/{id}/revoke"},
		{"a cross-origin POST", func(t *testing.T, ta *testApp, c *http.Client, path string) {
			ta.post(c, path, nil, "Sec-Fetch-Site", "cross-site")
		}, revokePath, `msg="cross-origin request blocked"`, "last_route=/sessions/{id}/revoke"},
		{"the client left", func(t *testing.T, ta *testApp, c *http.Client, path string) {
			ta.redis.MustDo("CLIENT", "PAUSE", "5000", "WRITE") // the count's script waits
			t.Cleanup(func() { ta.redis.MustDo("CLIENT", "UNPAUSE") })
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ta.srv.URL+path, nil)
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}, func(string) string { return "/count" }, `msg="client gone"`, "last_route=/count"},
		{"the server stopping", func(t *testing.T, ta *testApp, c *http.Client, path string) {
			ta.app.Live.Close()
			ta.get(c, path)
		}, func(string) string { return "/live" }, `msg="refused while stopping"`, "route=/live"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestApp(t)
			c := ta.client()
			ta.register(c, "gus", "gus-password")
			ta.get(c, "/count") // a count stored, so the next one runs a script
			token := ta.token(c)
			tc.send(t, ta, c, tc.path(token))
			waitForLog(t, ta, tc.line)
			logs := ta.logs.String()
			for line := range strings.Lines(logs) {
				if strings.Contains(line, tc.line) && !lineHas(line, "", tc.route) {
					t.Errorf("%s, want %s:\n%s", tc.line, tc.route, line)
				}
				if strings.Contains(line, "path=") {
					t.Errorf("a line names a path:\n%s", line)
				}
			}
			if strings.Contains(logs, token) {
				t.Errorf("the session's token is in the log:\n%s", logs)
			}
		})
	}
}

// revokePath is POST /sessions/{id}/revoke with a client's own token where
// the page puts a session's one-way id.
func revokePath(token string) string { return "/sessions/" + token + "/revoke" }

// logged reports whether logs hold a line with msg (as the text handler
// writes it, quoted if need be) and each of fields ("route=/count") whole.
func logged(logs, msg string, fields ...string) bool {
	for line := range strings.Lines(logs) {
		if lineHas(line, msg, fields...) {
			return true
		}
	}
	return false
}

// lineHas is logged for one line; msg "" matches any.
func lineHas(line, msg string, fields ...string) bool {
	line = " " + strings.TrimSuffix(line, "\n") + " "
	m := msg
	if strings.ContainsAny(msg, " =\"") {
		m = strconv.Quote(msg)
	}
	if msg != "" && !strings.Contains(line, " msg="+m+" ") {
		return false
	}
	for _, f := range fields {
		if !strings.Contains(line, " "+f+" ") {
			return false
		}
	}
	return true
}

package handlers

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/inspect"
	"github.com/sessionlab/sessionlab/internal/metrics"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/redistrace"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/sessionstack"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// testApp is the app wired as main wires it, on a private redis-server,
// served by httptest.
type testApp struct {
	t     testing.TB // a *testing.B too, for bench_test.go
	redis *redistest.Server
	app   *App
	srv   *httptest.Server
	logs  *lockedWriter
}

// newTestApp starts Redis and the app; options may change the App before
// it serves (shorter timeouts, say).
func newTestApp(t testing.TB, options ...func(*App)) *testApp {
	t.Helper()
	rs := redistest.Start(t)
	return newTestAppOn(t, rs, options...)
}

// newTestAppOn serves another app instance on an existing Redis.
func newTestAppOn(t testing.TB, rs *redistest.Server, options ...func(*App)) *testApp {
	t.Helper()
	return wireTestApp(t, rs, sessionstack.Redis, options...).serve()
}

// wireTestApp builds the app as main does, sessions kept as mode says.
// options may change its settings (shorter timeouts, say) before the
// session stack is built from them.
func wireTestApp(t testing.TB, rs *redistest.Server, mode sessionstack.Mode, options ...func(*App)) *testApp {
	t.Helper()
	rdb, err := redisconn.Connect(t.Context(), redisconn.Config{URL: rs.URL()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	rdb = redistrace.Client(rdb, sessions.CutKey)

	sm := scs.New()
	sm.Cookie = SessionCookie(false)
	logs := &lockedWriter{w: &strings.Builder{}}
	a := &App{
		Log:        slog.New(slog.NewTextHandler(logs, nil)),
		Sessions:   sm,
		Accounts:   accounts.New(rdb, bcrypt.MinCost),
		Inspector:  inspect.New(rdb),
		Ready:      redisconn.NewProber(rdb, false).Probe,
		LogID:      sessions.LogID("test-salt").Of,
		Instance:   "test",
		ProcessID:  "a1b2c3",
		Started:    time.Now(),
		Idle:       30 * time.Minute,
		TouchEvery: time.Minute,
		Throttle:   throttle.New(rdb, throttle.DefaultPolicy),
		Metrics:    metrics.New(),
	}
	for _, o := range options {
		o(a)
	}
	if a.Redis, err = DescribeRedis(rs.URL()); err != nil {
		t.Fatal(err)
	}
	stack, err := sessionstack.New(sessionstack.Config{Mode: mode, Idle: a.Idle, Instance: a.Instance, Redis: redisconn.Config{URL: rs.URL()}}, sm, rdb, a.Log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stack.Close)
	a.Ops, a.Index, a.Live, a.Banner, a.Issued, a.InProcess = stack.Ops, stack.Index, stack.Live, stack.Warning, stack.Issued, stack.InProcess
	return &testApp{t: t, redis: rs, app: a, logs: logs}
}

// serve serves the wired app with httptest.
func (ta *testApp) serve() *testApp {
	ta.t.Helper()
	ta.srv = httptest.NewServer(ta.app.Routes())
	ta.t.Cleanup(ta.srv.Close)
	// Streams end when the hub closes, so close it before the server waits for them.
	ta.t.Cleanup(ta.app.Live.Close)
	return ta
}

// client is a browser: its own cookie jar, redirects not followed.
func (ta *testApp) client() *http.Client { return apptest.Client(ta.t) }

type response struct {
	status int
	body   string
	header http.Header
	length int64 // Content-Length; -1 when it was not sent (chunked)
}

func (ta *testApp) do(c *http.Client, req *http.Request) response {
	ta.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		ta.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, string(b), resp.Header, resp.ContentLength}
}

// get sends a GET; headers come in pairs ("HX-Request", "true").
func (ta *testApp) get(c *http.Client, path string, headers ...string) response {
	ta.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ta.srv.URL+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return ta.do(c, req)
}

// post sends a form the way a browser on this site would.
func (ta *testApp) post(c *http.Client, path string, form url.Values, headers ...string) response {
	ta.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, ta.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return ta.do(c, req)
}

// register creates an account and leaves c logged in.
func (ta *testApp) register(c *http.Client, name, password string) {
	ta.t.Helper()
	r := ta.post(c, "/register", url.Values{"username": {name}, "password": {password}})
	if r.status != http.StatusSeeOther {
		ta.t.Fatalf("register %s: status %d, want 303\n%s", name, r.status, r.body)
	}
}

// token is the session token in c's jar ("" for none).
func (ta *testApp) token(c *http.Client) string {
	u, _ := url.Parse(ta.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == ta.app.Sessions.Cookie.Name {
			return ck.Value
		}
	}
	return ""
}

// viewCount reads the number in data-testid="view-count".
func viewCount(t *testing.T, body string) string {
	t.Helper()
	const marker = `data-testid="view-count">`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no view-count in page:\n%s", body)
	}
	rest := body[i+len(marker):]
	return rest[:strings.Index(rest, "<")]
}

// operator fetches a page of the operator's routes (-debug-addr).
func (ta *testApp) operator(path string) response {
	ta.t.Helper()
	rec := httptest.NewRecorder()
	ta.app.OperatorRoutes().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return response{rec.Code, rec.Body.String(), rec.Header(), int64(rec.Body.Len())}
}

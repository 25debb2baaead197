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

	"golang.org/x/crypto/bcrypt"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
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
	logs  *apptest.Buffer
}

// newTestApp starts Redis and the app; options may change the App before
// it serves (a wrapped account store, say).
func newTestApp(t testing.TB, options ...func(*App)) *testApp {
	t.Helper()
	rs := redistest.Start(t)
	return newTestAppOn(t, rs, options...)
}

// newTestAppOn serves another app instance on an existing Redis.
func newTestAppOn(t testing.TB, rs *redistest.Server, options ...func(*App)) *testApp {
	t.Helper()
	return wireTestApp(t, rs, testConfig(rs, sessionstack.Redis), options...).serve()
}

// newTestAppWith serves an app whose settings (timeouts, instance name)
// differ from testConfig's: New builds the session stack from them.
func newTestAppWith(t testing.TB, rs *redistest.Server, settings func(*Config), options ...func(*App)) *testApp {
	t.Helper()
	cfg := testConfig(rs, sessionstack.Redis)
	settings(&cfg)
	return wireTestApp(t, rs, cfg, options...).serve()
}

// testConfig is main's configuration as the tests run it: rs, cheap
// bcrypt, instance "test".
func testConfig(rs *redistest.Server, mode sessionstack.Mode) Config {
	return Config{
		Store:      mode,
		Redis:      redisconn.Config{URL: rs.URL()},
		Lifetime:   24 * time.Hour,
		Idle:       30 * time.Minute,
		BcryptCost: bcrypt.MinCost,
		Throttle:   throttle.DefaultPolicy,
		Instance:   "test",
		LogSalt:    []byte("test-salt"),
	}
}

// wireTestApp builds the app with New, as main does, logging into a buffer
// the test can read; options then change the App.
func wireTestApp(t testing.TB, rs *redistest.Server, cfg Config, options ...func(*App)) *testApp {
	t.Helper()
	rdb, err := redisconn.Connect(t.Context(), cfg.Redis)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	logs := &apptest.Buffer{}
	a, err := New(cfg, rdb, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	a.ProcessID = "a1b2c3"
	for _, o := range options {
		o(a)
	}
	if a.Idle != cfg.Idle || a.Instance != cfg.Instance {
		t.Fatal("set Idle and Instance with newTestAppWith: the session stack is built from them")
	}
	return &testApp{t: t, redis: rs, app: a, logs: logs}
}

// serve serves the wired app with httptest.
func (ta *testApp) serve() *testApp {
	ta.t.Helper()
	ta.srv = httptest.NewUnstartedServer(ta.app.Routes())
	ta.srv.Listener = OneWriteListener(ta.srv.Config, ta.app.LimitConns(ta.srv.Listener)) // as main serves it
	ta.srv.Start()
	ta.t.Cleanup(ta.srv.Close)
	// Streams end when the hub closes, so close it before the server waits for them.
	ta.t.Cleanup(ta.app.Live.Close)
	ta.t.Cleanup(ta.app.EndStreams)
	return ta
}

// noErrorLogged fails t if the app logged anything at ERROR: what it
// recovers from is a WARN.
func (ta *testApp) noErrorLogged(t testing.TB) {
	t.Helper()
	if logs := ta.logs.String(); strings.Contains(logs, "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs)
	}
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

package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// outageBound is how long any request may take while Redis is out: the
// request's budget plus a margin for a loaded machine under -race. It tells
// a bounded request from a hung one (DEBUG SLEEP and CLIENT PAUSE last 5 s,
// SIGSTOP for ever); the budget's own precision is redisconn's bound_test.
const outageBound = redisconn.RequestBudget + 2*time.Second

// sessionRequests are requests that need Redis, as a browser sends them.
var sessionRequests = []struct {
	name    string
	path    string
	form    url.Values
	headers []string
	fresh   bool // sent by a browser with no cookie yet
}{
	{"count", "/count", nil, nil, false},
	{"htmx count", "/count", nil, countHeaders[1], false},
	{"profile", "/profile", nil, nil, false},
	{"htmx profile", "/profile", nil, []string{"HX-Request", "true"}, false},
	{"redis page", "/redis", nil, nil, false},
	{"home", "/", nil, nil, false},
	{"login", "/login", url.Values{"username": {"gus"}, "password": {"gus-password"}}, nil, false},
	{"login, no cookie yet", "/login", url.Values{"username": {"gus"}, "password": {"gus-password"}}, nil, true},
	{"register, no cookie yet", "/register", url.Values{"username": {"newcomer"}, "password": {"newcomer-password"}}, nil, true},
	{"first count, no cookie yet", "/count", nil, nil, true},
}

// While Redis is stopped or hung, every request that needs it is answered
// 503 with the clear page (a fragment for htmx) within outageBound, the process
// stays up (healthz 200), and readyz says 503. When Redis is back, the app
// recovers by itself within seconds, with nothing lost and no restart, and
// the counts that were answered 503 were not counted.
func TestRedisOutageAnswers503AndRecovers(t *testing.T) {
	for _, tc := range []struct {
		name        string
		break_, fix func(*redistest.Server)
	}{
		{"stopped", (*redistest.Server).Stop, (*redistest.Server).Start},
		{"hung (SIGSTOP)", (*redistest.Server).Pause, (*redistest.Server).Resume},
		// Redis blocks itself: each command sent meanwhile waits, and a
		// request that tried several in turn added up their limits.
		{"asleep (DEBUG SLEEP)", blockRedis("DEBUG", "SLEEP", "5"), (*redistest.Server).WaitAnswering},
		{"paused (CLIENT PAUSE)", blockRedis("CLIENT", "PAUSE", "5000"), (*redistest.Server).WaitAnswering},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestAppOn(t, redistest.Start(t, "--enable-debug-command", "local"))
			c := ta.client()
			ta.register(c, "gus", "gus-password")
			ta.get(c, "/count")

			tc.break_(ta.redis)
			hits := make([]hit, len(sessionRequests))
			var wg sync.WaitGroup
			for i, rq := range sessionRequests {
				cl := c
				if rq.fresh {
					cl = ta.client()
				}
				wg.Go(func() { hits[i] = fetch(cl, ta.srv.URL+rq.path, rq.form, rq.headers...) })
			}
			wg.Wait()
			for i, rq := range sessionRequests {
				h := hits[i]
				switch {
				case h.err != nil:
					t.Errorf("%s: %v after %v", rq.name, h.err, h.elapsed)
					continue
				case h.status != http.StatusServiceUnavailable:
					t.Errorf("%s: status %d, want 503\n%s", rq.name, h.status, h.body)
				case h.elapsed > outageBound:
					t.Errorf("%s: answered after %v, want within %v", rq.name, h.elapsed, outageBound)
				case !strings.Contains(h.body, `data-testid="problem-title">Session store unavailable<`):
					t.Errorf("%s: not the clear 503 page:\n%s", rq.name, h.body)
				case h.setCookie:
					t.Errorf("%s: set a cookie while Redis was out", rq.name)
				}
				if full := strings.Contains(h.body, "<html"); full == (rq.headers != nil) {
					t.Errorf("%s: whole page %v, want a fragment for htmx and a page otherwise", rq.name, full)
				}
			}
			if h := fetch(c, ta.srv.URL+"/healthz", nil); h.status != http.StatusOK || h.elapsed > outageBound {
				t.Errorf("healthz: %d after %v, want 200 at once", h.status, h.elapsed)
			}
			if h := fetch(c, ta.srv.URL+"/readyz", nil); h.status != http.StatusServiceUnavailable || h.elapsed > outageBound {
				t.Errorf("readyz: %d after %v, want 503 within %v", h.status, h.elapsed, outageBound)
			}

			tc.fix(ta.redis)
			untilOK(t, c, ta.srv.URL+"/readyz") // the client may still be reconnecting
			if h := untilOK(t, c, ta.srv.URL+"/count"); h.views() != 2 {
				t.Errorf("first count after Redis came back shows %d, want 2", h.views())
			}
			if r := ta.get(c, "/profile"); r.status != http.StatusOK || !strings.Contains(r.body, "Hello gus") {
				t.Errorf("profile after Redis came back: %d", r.status)
			}
		})
	}
}

// A count whose script Redis received but did not answer in time may still
// be counted when Redis wakes up: the 503 must not say nothing was changed.
func TestCountStuckInRedisSaysItMayHaveBeenSaved(t *testing.T) {
	ta := newTestAppOn(t, redistest.Start(t))
	c := ta.client()
	ta.get(c, "/count")
	ta.get(c, "/count") // the first reuse touches the session; later counts only count
	// Writes wait (the count script is one), reads do not (the session's
	// GET loads): the request fails after its script reached Redis.
	ta.redis.MustDo("CLIENT", "PAUSE", "3000", "WRITE")
	h := fetch(c, ta.srv.URL+"/count", nil)
	if h.status != http.StatusServiceUnavailable {
		t.Fatalf("count while Redis holds writes: %d, want 503\n%s", h.status, h.body)
	}
	if !strings.Contains(h.body, "may or may not have been saved") || strings.Contains(h.body, "nothing was changed") {
		t.Errorf("the 503 after the count script was sent says:\n%s", h.body)
	}
	ta.redis.MustDo("CLIENT", "UNPAUSE")
	// Whether the stuck count ran depends on whether Redis still had it
	// when it woke up (a closed connection takes it along): either is
	// what the page said.
	if h := untilOK(t, c, ta.srv.URL+"/count"); h.views() != 3 && h.views() != 4 {
		t.Errorf("next count shows %d, want 3 (the stuck count was dropped) or 4 (it ran)", h.views())
	}
}

// blockRedis sends a command that keeps Redis from answering for seconds.
func blockRedis(cmd ...string) func(*redistest.Server) {
	return func(rs *redistest.Server) { rs.Block(cmd...) }
}

// Redis restarted (append-only persistence, as `task run` starts it):
// logins and counts are still there. Session reads right after it succeed
// although every pooled connection died with the old process (the pool
// tests its idle connections after a failure, and the store retries once).
func TestRedisRestartKeepsLoginsAndCounts(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "hal", "hal-password")
	for range 3 {
		ta.get(c, "/count")
	}
	// Fill both connection pools with idle connections, soon to be dead.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { fetch(c, ta.srv.URL+"/profile", nil) })
	}
	wg.Wait()

	ta.redis.Restart()

	hits := make([]hit, 20)
	for i := range hits {
		wg.Go(func() { hits[i] = fetch(c, ta.srv.URL+"/profile", nil) })
	}
	wg.Wait()
	for i, h := range hits {
		if h.status != http.StatusOK || !strings.Contains(h.body, "Hello hal") {
			t.Errorf("profile %d right after the restart: %d", i, h.status)
		}
	}
	if h := untilOK(t, c, ta.srv.URL+"/count"); h.views() != 4 {
		t.Errorf("count after the restart shows %d, want 4", h.views())
	}
	// A login writes through connections the restart may have killed; like
	// a count it is not sent twice, so it may need a second try.
	other := ta.client()
	h := fetch(other, ta.srv.URL+"/login", url.Values{"username": {"hal"}, "password": {"hal-password"}})
	for deadline := time.Now().Add(10 * time.Second); h.status == http.StatusServiceUnavailable && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		h = fetch(other, ta.srv.URL+"/login", url.Values{"username": {"hal"}, "password": {"hal-password"}})
	}
	if h.status != http.StatusSeeOther {
		t.Errorf("login after the restart: %d (the account was lost?)", h.status)
	}
}

// stopRedisAfterAuth lets the password check pass, then stops Redis: the
// login's writes (renewal, index, session) all come after.
type stopRedisAfterAuth struct {
	accountStore
	rs *redistest.Server
}

func (s stopRedisAfterAuth) Authenticate(ctx context.Context, name, password string) (accounts.Account, error) {
	acct, err := s.accountStore.Authenticate(ctx, name, password)
	s.rs.Stop()
	return acct, err
}

// A write that failed is reported as failed, never as done.
func TestFailedWriteIsReportedAsFailed(t *testing.T) {
	t.Run("login", func(t *testing.T) {
		rs := redistest.Start(t)
		ta := newTestAppOn(t, rs, func(a *App) { a.Accounts = stopRedisAfterAuth{a.Accounts, rs} })
		c := ta.client()
		ta.register(c, "ida", "ida-password")
		if r := ta.post(c, "/logout", nil); r.status != http.StatusSeeOther {
			t.Fatalf("logout: %d", r.status)
		}
		h := fetch(c, ta.srv.URL+"/login", url.Values{"username": {"ida"}, "password": {"ida-password"}})
		if h.status != http.StatusServiceUnavailable || h.setCookie || h.header.Get("Location") != "" {
			t.Errorf("login with Redis gone after the password check: %d, cookie %v, Location %q; want 503, no cookie, no redirect",
				h.status, h.setCookie, h.header.Get("Location"))
		}
		rs.Start()
		if r := ta.get(c, "/profile"); r.status != http.StatusUnauthorized {
			t.Errorf("profile after the failed login: %d, want 401 (nothing was saved)", r.status)
		}
	})
	t.Run("first count", func(t *testing.T) {
		ta := newTestApp(t)
		c := ta.client()
		ta.redis.Stop()
		h := fetch(c, ta.srv.URL+"/count", nil) // a new session: the one full write
		if h.status != http.StatusServiceUnavailable || h.setCookie || h.views() != -1 {
			t.Errorf("count that could not be saved: %d, cookie %v, views %d; want 503, no cookie, no count",
				h.status, h.setCookie, h.views())
		}
	})
}

// untilOK repeats a GET until it answers 200: how the app recovers from an
// outage. A command that meets a connection Redis closed is answered 503
// rather than sent again (a count sent twice could count twice), so the
// first request after Redis returns may fail; within seconds none do.
func untilOK(t *testing.T, c *http.Client, u string) hit {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := fetch(c, u, nil)
		if h.status == http.StatusOK {
			return h
		}
		if h.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("GET %s: %d, %v; the app did not recover\n%s", u, h.status, h.err, h.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// blockRedisAfterAuth lets the password check pass, then blocks Redis for
// seconds (once armed): every write of the login comes after.
type blockRedisAfterAuth struct {
	accountStore
	rs    *redistest.Server
	armed *bool
}

func (s blockRedisAfterAuth) Authenticate(ctx context.Context, name, password string) (accounts.Account, error) {
	acct, err := s.accountStore.Authenticate(ctx, name, password)
	if *s.armed {
		s.rs.Block("DEBUG", "SLEEP", "4")
	}
	return acct, err
}

// A request that tries several commands in turn against a hung Redis
// (a login: renew the token, then save the session logged out when that
// fails) answers within one budget for all of them, not a limit each.
func TestHungRedisMidRequestAnswersWithinTheBudget(t *testing.T) {
	rs := redistest.Start(t, "--enable-debug-command", "local")
	armed := false
	ta := newTestAppOn(t, rs, func(a *App) { a.Accounts = blockRedisAfterAuth{a.Accounts, rs, &armed} })
	c := ta.client()
	ta.register(c, "ida", "ida-password")
	ta.post(c, "/logout", nil)
	armed = true
	h := fetch(c, ta.srv.URL+"/login", url.Values{"username": {"ida"}, "password": {"ida-password"}})
	if h.status != http.StatusServiceUnavailable || h.setCookie {
		t.Errorf("login with Redis hung after the password check: %d, cookie %v; want 503, no cookie", h.status, h.setCookie)
	}
	if h.elapsed > outageBound {
		t.Errorf("login with Redis hung after the password check answered after %v, want within %v", h.elapsed, outageBound)
	}
	rs.WaitAnswering()
}

// An outage's line a minute per kind says what the outage did since the last
// line: how many requests it failed, on how many routes, and the routes it
// failed most (as the route table declares them, method and pattern; "none"
// when no route matched), not one request's method and route beside
// everyone's count as if that route had failed them all.
func TestOutageLinesSayWhichRoutesFailed(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "gus", "gus-password")
	token := ta.token(c)
	const kind = "connection refused"
	lines := func() []string {
		var ls []string
		for line := range strings.Lines(ta.logs.String()) {
			if lineHas(line, "Redis cannot serve", "kind="+strconv.Quote(kind)) {
				ls = append(ls, line)
			}
		}
		return ls
	}
	fail := func(method, path string, times int) {
		t.Helper()
		for range times {
			req, _ := http.NewRequest(method, ta.srv.URL+path, nil)
			if r := ta.do(c, req); r.status != http.StatusServiceUnavailable {
				t.Fatalf("%s %s with Redis stopped: %d, want 503", method, path, r.status)
			}
		}
	}

	ta.redis.Stop()
	// A connection the stop closed fails its request as "connection lost";
	// then every new one is refused.
	waitFor(t, "a line of kind "+kind, func() bool {
		fail(http.MethodGet, "/count", 1)
		return len(lines()) > 0
	})
	if l, n := lines()[0], fieldOf(lines()[0], "failed_requests"); n == "" || !lineHas(l, "", "routes=1", `top="GET /count (`+n+`)"`) {
		t.Fatalf("first line, want routes=1 and top naming GET /count with every failed request:\n%s", l)
	}
	fail(http.MethodGet, "/count", 3)
	fail(http.MethodPost, "/login", 2)
	fail(http.MethodGet, "/profile", 1)
	fail(http.MethodGet, "/"+token, 1) // no route: a path is the client's to write
	if n := len(lines()); n != 1 {
		t.Fatalf("%d lines within the minute, want 1:\n%s", n, ta.logs.String())
	}
	ta.app.tallies.backdate(outageKind(kind), perMinuteEvery)
	fail(http.MethodGet, "/count", 1)
	ls := lines()
	if len(ls) != 2 {
		t.Fatalf("%d lines a minute later, want 2:\n%s", len(ls), ta.logs.String())
	}
	if want := []string{"failed_requests=8", "routes=4", `top="GET /count (4), POST /login (2), GET /profile (1)"`, "status=503"}; !lineHas(ls[1], "", want...) {
		t.Errorf("second line:\n%s\nwant %v", ls[1], want)
	}
	for _, l := range ls {
		if strings.Contains(l, " method=") || strings.Contains(l, " route=") {
			t.Errorf("a line names one request's method or route as if it stood for all:\n%s", l)
		}
	}
	if strings.Contains(ta.logs.String(), token) {
		t.Errorf("the session's token is in the log:\n%s", ta.logs.String())
	}
}

// fieldOf is the value of an unquoted field of a text log line ("" when absent).
func fieldOf(line, name string) string {
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v
		}
	}
	return ""
}

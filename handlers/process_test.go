package handlers

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// testIDText is the text inside the first element with this data-testid,
// tags removed and spaces squeezed ("" when there is none).
func testIDText(body, id string) string {
	i := strings.Index(body, `data-testid="`+id+`"`)
	if i < 0 {
		return ""
	}
	rest := body[i:]
	rest = rest[strings.Index(rest, ">")+1:]
	// Up to the end of the element: good enough for the flat elements here.
	end := strings.Index(rest, "</p>")
	if j := strings.Index(rest, "</span>"); end < 0 || j >= 0 && j < end {
		end = j
	}
	var b strings.Builder
	inTag := false
	for _, r := range rest[:end] {
		switch {
		case r == '<':
			inTag = true
		case r == '>':
			inTag = false
		case !inTag:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func TestProcessEvidence(t *testing.T) {
	t.Run("every page's footer names the instance and the process", func(t *testing.T) {
		ta := newTestApp(t)
		for _, path := range []string{"/", "/count", "/login", "/redis"} {
			body := ta.get(ta.client(), path).body
			got := testIDText(body, "process")
			if !strings.Contains(got, "process a1b2c3, started ") || !strings.Contains(got, "just now") {
				t.Errorf("%s: process badge %q, want the process id, start time and how long ago", path, got)
			}
		}
	})

	t.Run("a new session records, in the write that creates it, which process and instance created it", func(t *testing.T) {
		ta := newTestApp(t)
		c := ta.client()
		before := time.Now().Add(-time.Second)
		ta.get(c, "/count")
		raw := ta.redis.MustDo("GET", sessions.Key(ta.token(c)))
		_, values, err := sessions.Codec{}.Decode([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		o, _ := values[sessions.KeyOrigin].(sessions.Origin)
		if o.Process != "a1b2c3" || o.Instance != "test" || o.At.Before(before) || o.At.After(time.Now()) {
			t.Errorf("origin = %+v, want process a1b2c3 on instance test, now", o)
		}
	})

	t.Run("a session older than the serving process says it survived, with both facts", func(t *testing.T) {
		first := newTestApp(t)
		c := first.client()
		first.register(c, "maya", "maya-password")
		first.get(c, "/count")
		if body := first.get(c, "/count").body; strings.Contains(body, `data-testid="survived"`) {
			t.Fatal("the process that created the session says it survived")
		}
		// The restarted process: same instance name, new id, started later.
		second := newTestAppOn(t, first.redis, func(a *App) { a.ProcessID = "d4e5f6"; a.Started = time.Now().Add(time.Second) })
		for _, path := range []string{"/count", "/profile"} {
			body := second.get(c, path).body
			got := testIDText(body, "survived")
			for _, want := range []string{"created at", "by process a1b2c3 (instance test)", "d4e5f6", "started at", "lives in Redis"} {
				if !strings.Contains(got, want) {
					t.Errorf("%s: survived = %q, want it to say %q", path, got, want)
				}
			}
		}
		if got := viewCount(t, second.get(c, "/count").body); got != "4" {
			t.Errorf("count on the new process = %s, want 4 (the count went on)", got)
		}
	})

	t.Run("a session created on another instance says so", func(t *testing.T) {
		a := newTestApp(t)
		c := a.client()
		a.get(c, "/count")
		b := newTestAppWith(t, a.redis, func(c *Config) { c.Instance = "b" }, func(app *App) {
			app.ProcessID, app.Started = "0b0b0b", time.Now().Add(-time.Minute)
		})
		body := b.get(c, "/count").body
		got := testIDText(body, "other-instance")
		if !strings.Contains(got, "Instance test (process a1b2c3) created it") || !strings.Contains(got, "instance b served this page") {
			t.Errorf("other-instance = %q", got)
		}
		if strings.Contains(body, `data-testid="survived"`) {
			t.Error("a session newer than the process says it survived")
		}
	})
}

func TestHeadCountChangesNothing(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.get(c, "/count")
	for range 3 {
		req, _ := http.NewRequest(http.MethodHead, ta.srv.URL+"/count", nil)
		if r := ta.do(c, req); r.status != http.StatusOK {
			t.Fatalf("HEAD /count: %d", r.status)
		}
	}
	if got := viewCount(t, ta.get(c, "/count").body); got != "2" {
		t.Errorf("after three HEADs the next view is %s, want 2", got)
	}
	t.Run("without a session it creates none", func(t *testing.T) {
		fresh := ta.client()
		req, _ := http.NewRequest(http.MethodHead, ta.srv.URL+"/count", nil)
		if r := ta.do(fresh, req); r.header.Get("Set-Cookie") != "" {
			t.Errorf("HEAD /count set a cookie: %s", r.header.Get("Set-Cookie"))
		}
	})
}

func TestRedisPage(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "ines", "ines-password")
	body := ta.get(c, "/redis").body
	t.Run("names its heading once", func(t *testing.T) {
		if n := strings.Count(body, "What's in Redis</h"); n != 1 {
			t.Errorf("the heading appears %d times", n)
		}
	})
	t.Run("writes the index's epoch milliseconds out as times", func(t *testing.T) {
		got := testIDText(body, "redis-times")
		year := time.Now().UTC().Format("2006-")
		if !strings.Contains(got, "created 1") || !strings.Contains(got, "last_seen 1") || strings.Count(got, "= "+year) != 2 {
			t.Errorf("readable times = %q", got)
		}
	})
}

func TestRestartControl(t *testing.T) {
	t.Run("without -demo-controls there is no button and POST /restart is 404", func(t *testing.T) {
		ta := newTestApp(t)
		c := ta.client()
		if body := ta.get(c, "/count").body; strings.Contains(body, `data-testid="restart"`) {
			t.Error("restart button shown without -demo-controls")
		}
		if r := ta.post(c, "/restart", nil); r.status != http.StatusNotFound {
			t.Errorf("POST /restart: %d, want 404", r.status)
		}
	})

	restarts := 0
	ta := newTestApp(t, func(a *App) {
		a.Restart = func() { restarts++ }
		a.TrustedProxies = Proxies{netip.MustParsePrefix("127.0.0.1/32")}
	})
	c := ta.client()
	t.Run("with -demo-controls every page shows the button", func(t *testing.T) {
		if body := ta.get(c, "/").body; !strings.Contains(body, `data-testid="restart"`) {
			t.Error("no restart button")
		}
	})
	t.Run("a loopback client restarts the process", func(t *testing.T) {
		r := ta.post(c, "/restart", nil, "HX-Request", "true")
		if r.status != http.StatusAccepted || restarts != 1 || !strings.Contains(r.body, `data-testid="restarting"`) {
			t.Errorf("POST /restart: %d, %d restarts, want 202 and one", r.status, restarts)
		}
	})
	t.Run("a client on another machine gets 404", func(t *testing.T) {
		r := ta.post(c, "/restart", nil, "X-Forwarded-For", "203.0.113.9")
		if r.status != http.StatusNotFound || restarts != 1 {
			t.Errorf("POST /restart from 203.0.113.9: %d, %d restarts, want 404 and none", r.status, restarts)
		}
	})
	t.Run("a cross-site request is refused", func(t *testing.T) {
		r := ta.post(c, "/restart", url.Values{}, "Sec-Fetch-Site", "cross-site")
		if r.status != http.StatusForbidden || restarts != 1 {
			t.Errorf("cross-site POST /restart: %d, %d restarts, want 403 and none", r.status, restarts)
		}
	})
	t.Run("GET /restart does nothing", func(t *testing.T) {
		if r := ta.get(c, "/restart"); r.status != http.StatusMethodNotAllowed || restarts != 1 {
			t.Errorf("GET /restart: %d, %d restarts", r.status, restarts)
		}
	})
}

// The stream's first event says which process answered, against the one
// the page knew, and whether the session is alive with its stored count.
func TestLiveHello(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.get(c, "/count")
	ta.get(c, "/count")
	t.Run("after a restart: a new process, the session survived", func(t *testing.T) {
		s := apptest.OpenStream(t, c, ta.srv.URL+"/live?process=ffffff")
		ev := s.Next(views.SSEHello)
		for _, want := range []string{`data-process="a1b2c3"`, `data-session="true"`, `data-views="2"`, "a new process answered", "this page came from process <code>ffffff</code>", "survived", "When this page reconnected (at <time"} {
			if !strings.Contains(ev.Data, want) {
				t.Errorf("hello = %q, want %q", ev.Data, want)
			}
		}
	})
	t.Run("after a dropped connection: the same process", func(t *testing.T) {
		ev := apptest.OpenStream(t, c, ta.srv.URL+"/live?process=a1b2c3").Next(views.SSEHello)
		if !strings.Contains(ev.Data, "the same process") || strings.Contains(ev.Data, "new process") {
			t.Errorf("hello = %q", ev.Data)
		}
	})
}

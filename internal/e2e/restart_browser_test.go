package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// demoSite is `go tool task run` in small: one app with -demo-controls
// (plus args) on its own Redis.
func demoSite(t *testing.T, args ...string) *site {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	rs := redistest.Start(t)
	args = append([]string{"-redis", rs.URL(), "-instance", "demo", "-demo-controls"}, args...)
	return &site{redis: rs, app: apptest.Start(t, bin, args...)}
}

// processID is the process id the footer shows.
func (b *browser) processID() string {
	b.t.Helper()
	return eval[string](b, `document.querySelector('[data-testid=process]')?.dataset.process ?? ''`)
}

// markPage leaves a mark in the page's JavaScript state; unmarked() says
// whether a reload has wiped it since.
func (b *browser) markPage() {
	b.t.Helper()
	eval[bool](b, `(window.sessionlabMark = true)`)
}

func (b *browser) unmarked() bool {
	b.t.Helper()
	return !eval[bool](b, `window.sessionlabMark === true`)
}

// statusText is the live status line's text, "" when empty.
func (b *browser) statusText() string {
	b.t.Helper()
	return eval[string](b, `(document.querySelector('[data-testid=live-status]')?.textContent ?? '').replace(/\s+/g, ' ').trim()`)
}

// Exercise 4, seen on the page: the restart button ends the process and a
// fresh one starts; the open page notices, without a reload, that a new
// process answered and that the session survived with its count; after a
// reload the footer names the new process and the page says the session is
// older than it.
func TestBrowserRestartButton(t *testing.T) {
	t.Parallel()
	s := demoSite(t)
	b := newBrowser(t)
	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	b.count(2)
	before := b.processID()
	footer := b.text("process")
	if len(before) < 6 || !strings.Contains(footer, before) || !strings.Contains(footer, "started") {
		t.Fatalf("footer process badge %q (id %q), want a process id and its start time", footer, before)
	}
	b.markPage()
	b.click("restart")

	b.waitFor("the page to hear a new process answered", `document.querySelector('[data-testid=live-status] [data-testid=live-survived]') !== null`)
	if b.unmarked() {
		t.Fatal("the page reloaded; it must notice the restart by itself")
	}
	status := b.statusText()
	after := b.processID()
	if after == before || after == "" {
		t.Errorf("footer process after the restart = %q, before %q: want a new one", after, before)
	}
	for _, want := range []string{"new process answered", "process " + after, "this page came from process " + before, "survived", "count at 2"} {
		if !strings.Contains(status, want) {
			t.Errorf("status after the restart = %q, want it to say %q", status, want)
		}
	}

	// The news beside the restart button is held in view for a moment
	// while the new process's first events grow the page, but not once the
	// reader scrolls away: here back up to the counter, as a count made
	// elsewhere (the same session, another client) arrives.
	eval[bool](b, `(scrollTo(0, 0), true)`)
	countElsewhere(t, s.url("/count"), b.sessionCookie(s.app.URL))
	b.waitText("view-count", "3")
	time.Sleep(200 * time.Millisecond) // a few animation frames
	if y := eval[float64](b, `scrollY`); y != 0 {
		t.Errorf("the page scrolled to %v px after the reader went back to the top: the restart's news pulled them back", y)
	}
	b.count(4) // the page works on with the new process

	b.do("reload", chromedp.Reload())
	b.waitText("view-count", "5")
	if got := b.processID(); got != after {
		t.Errorf("after a reload the footer names process %q, want %q", got, after)
	}
	survived := b.text("survived")
	for _, want := range []string{"by process " + before, "process that served this page, " + after, "lives in Redis"} {
		if !strings.Contains(survived, want) {
			t.Errorf("survived = %q, want it to say %q", survived, want)
		}
	}
	b.screenshot("restart-survived")

	t.Run("a restart from another machine is refused", func(t *testing.T) {
		// The test reaches the app over loopback, so only a trusted proxy's
		// header can make the client another machine: see handlers'
		// TestRestartControl. Here: the process is untouched by a GET.
		resp, err := http.Get(s.url("/restart"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET /restart: %d, want 405", resp.StatusCode)
		}
	})
}

// countElsewhere counts a view of the session named by token, as another
// client holding its cookie would.
func countElsewhere(t *testing.T, url, token string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: "session", Value: token})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s with the browser's cookie: %d", url, resp.StatusCode)
	}
}

// Without -demo-controls no page offers the restart, and POST /restart is
// a page that does not exist.
func TestBrowserNoRestartButtonByDefault(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	for _, path := range []string{"/", "/count"} {
		b.open(s.url(path))
		if b.present("restart") {
			t.Errorf("%s shows a restart button without -demo-controls", path)
		}
	}
	resp, err := http.Post(s.url("/restart"), "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /restart without -demo-controls: %d, want 404", resp.StatusCode)
	}
}

// An open page through a real outage: the process is stopped, the page
// says the server is unreachable and that it retries; a click says it was
// not sent; a new process on the same address brings the page back, with
// the count as Redis has it, without a reload.
func TestBrowserOutageAndReturn(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	b.count(2)
	before := b.processID()
	b.markPage()

	s.app.Stop()
	b.waitFor("the page to say the server is down", `document.querySelector('[data-testid=live-down]') !== null`)
	if got := b.statusText(); !strings.Contains(got, "not answering") || !strings.Contains(got, "retrying") {
		t.Errorf("status while down = %q", got)
	}
	b.click("count-button")
	b.waitFor("the click to say it was not sent", `document.querySelector('[data-testid=live-not-sent]') !== null`)
	if got := b.text("view-count"); got != "2" {
		t.Errorf("the count changed to %s while the server was down", got)
	}
	// Another browser counts meanwhile, on the new process: the page must
	// show Redis's count, not its own.
	time.Sleep(1500 * time.Millisecond) // a few retries go by
	// Each retry rewrites the status line; the click's note stays in it
	// until the server is back.
	if !b.present("live-not-sent") || !b.present("live-down") {
		t.Errorf("after a few retries the status line is %q; want the retry's news and the click's 'Not sent' both", b.statusText())
	}
	s.app = apptest.Start(t, bin, "-redis", s.redis.URL(), "-addr", s.app.Addr, "-instance", "browser-test")
	b.waitFor("the page to hear the server again", `document.querySelector('[data-testid=live-status] [data-testid=live-survived]') !== null`)
	if b.unmarked() {
		t.Fatal("the page reloaded; it must notice the return by itself")
	}
	if got := b.processID(); got == before {
		t.Errorf("footer still names process %s after a new process answered", got)
	}
	b.count(3)
	t.Run("reconnecting does not flood the server", func(t *testing.T) {
		// A few attempts a second at most: the log of the down time has
		// none to count, so count what the browser asked for instead.
		n := eval[int](b, `performance.getEntriesByType('resource').filter(e => e.name.includes('/live?')).length`)
		if n > 8 {
			t.Errorf("%d stream requests for an outage of about 2 s, want a few", n)
		}
	})
}

// -store memory: after a restart the open page says the session did not
// survive; a reload says why (the cookie names a session this process never
// had) and starts over at 1.
func TestBrowserRestartLosesMemorySession(t *testing.T) {
	t.Parallel()
	s := demoSite(t, "-store", "memory")
	b := newBrowser(t)
	b.open(s.url("/"))
	if got := b.text("home-store"); !strings.Contains(got, "memory") || strings.Contains(got, "lives in Redis") {
		t.Errorf("home page in memory mode says %q", got)
	}
	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	b.count(2)
	if b.present("lost-session") {
		t.Fatal("lost-session shown before any restart")
	}
	b.click("restart")
	b.waitFor("the page to hear the session is gone", `document.querySelector('[data-testid=live-status] [data-testid=live-lost]') !== null`)
	if got := b.statusText(); !strings.Contains(got, "did not survive") || !strings.Contains(got, "memory") {
		t.Errorf("status after the restart = %q", got)
	}
	b.screenshot("restart-memory-live")
	b.do("reload", chromedp.Reload())
	b.waitText("view-count", "1")
	lost := b.text("lost-session")
	if !strings.Contains(lost, "does not know") || !strings.Contains(lost, "restarted") || !strings.Contains(lost, "memory") {
		t.Errorf("lost-session = %q", lost)
	}
	if b.present("survived") {
		t.Error("memory mode claims the session survived")
	}
	b.screenshot("restart-memory")
	b.do("reload", chromedp.Reload()) // the new session is known: no more explanation
	b.waitText("view-count", "2")
	if b.present("lost-session") {
		t.Error("lost-session shown for a session this process created")
	}
}

// Ten tabs of one browser over plain HTTP/1.1 (six connections per host):
// all load, share one event stream, and all show a count made in any one.
func TestBrowserTenTabs(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	first := newBrowser(t)
	first.open(s.url("/count"))
	first.waitText("view-count", "1")
	tabs := []*browser{first}
	for i := 2; i <= 10; i++ {
		tab := first.newTab()
		tab.open(s.url("/count"))
		tab.waitText("view-count", fmt.Sprint(i))
		tabs = append(tabs, tab)
	}
	waitStreams(t, s.app, 1)
	tabs[9].count(11)
	for i, tab := range tabs {
		tab.waitFor(fmt.Sprintf("tab %d to show 11", i+1), `(document.querySelector('[data-testid=view-count]')?.textContent ?? '').trim() === '11'`)
	}
	tabs[0].count(12)
	tabs[9].waitText("view-count", "12")
}

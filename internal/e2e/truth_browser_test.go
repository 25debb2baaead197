package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// -store memory: a click on Count right after a restart, before any
// reload, starts a new session, and the page says why (the click reloads
// it: the whole page is new, down to the footer's process).
func TestBrowserMemoryRestartThenCountSaysTheSessionWasLost(t *testing.T) {
	t.Parallel()
	s := demoSite(t, "-store", "memory")
	b := newBrowser(t)
	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	b.count(2)
	b.click("restart")
	b.waitFor("the page to hear the session is gone", `document.querySelector('[data-testid=live-status] [data-testid=live-lost]') !== null`)
	b.click("count-button")
	b.waitText("view-count", "1")
	b.waitFor("the lost-session explanation", `document.querySelector('[data-testid=lost-session]') !== null`)
	if got := b.text("lost-session"); !strings.Contains(got, "does not know") || !strings.Contains(got, "memory") {
		t.Errorf("lost-session = %q", got)
	}
	b.screenshot("memory-count-after-restart")
	b.open(s.url("/count"))
	b.waitText("view-count", "2")
	if b.present("lost-session") {
		t.Error("lost-session shown for a session this process created")
	}
}

// inView holds when the first element matching sel is drawn, whole, inside
// the window as it is scrolled now.
func inView(sel string) string {
	return fmt.Sprintf(`(() => { const el = document.querySelector(%q); if (!el || !el.checkVisibility()) return false;
		const r = el.getBoundingClientRect(); return r.height > 0 && r.top >= -1 && r.bottom <= innerHeight + 1; })()`, sel)
}

// "Restart this server" sits at the foot of the page: what it does shows
// there, where the click was, at once and until the server is back, on a
// phone as on a desktop.
func TestBrowserRestartNewsShowsWhereTheClickWas(t *testing.T) {
	t.Parallel()
	s := demoSite(t)
	b := newBrowser(t)
	for i, v := range []viewport{{"desktop", 1280, 600}, {"phone", 390, 600}} {
		b.do(v.name+" width", chromedp.EmulateViewport(v.width, v.height))
		b.open(s.url("/count"))
		b.waitText("view-count", strconv.Itoa(i+1))
		b.do("scroll to the restart button", chromedp.ScrollIntoView(byTestID("restart")))
		if eval[float64](b, `scrollY`) <= 0 {
			t.Fatalf("at %s the page does not scroll: the test needs the button below the fold", v.name)
		}
		b.click("restart")
		b.waitFor("the restart's answer beside the button", inView(`[data-testid=restart-status] [data-testid=restarting]`))
		b.waitFor("the server's return beside the button", inView(`[data-testid=restart-status] [data-testid=live-back]`))
		if got := eval[string](b, `document.querySelector('[data-testid=restart-status]').textContent`); !strings.Contains(got, "new process answered") {
			t.Errorf("at %s beside the button after the restart: %q", v.name, got)
		}
	}
	b.screenshot("restart-news")
	b.do("reset viewport", chromedp.EmulateViewport(desktop.width, desktop.height))
}

// On a phone the Redis panel starts folded under its summary, so a page is
// not thousands of pixels long; the keyboard reaches the summary and opens
// it, and the whole panel is there. On a wide screen it is open from the
// start, with nothing to press.
func TestBrowserRedisPanelFoldsOnAPhone(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	b.register(s, "folded", "folded-password")
	const entries = `document.querySelector('aside [data-testid=redis-entries]')`
	for _, path := range []string{"/profile", "/count"} {
		b.do("desktop width", chromedp.EmulateViewport(desktop.width, desktop.height))
		b.open(s.url(path))
		b.waitFor("the Redis panel's entries", entries+` !== null`)
		if !eval[bool](b, entries+`.checkVisibility()`) {
			t.Errorf("%s at desktop width: the Redis panel is not shown", path)
		}
		if eval[bool](b, `document.querySelector('[data-testid=redis-fold-summary]')?.checkVisibility() ?? false`) {
			t.Errorf("%s at desktop width: the panel has a summary to press", path)
		}

		b.do("phone width", chromedp.EmulateViewport(phone.width, phone.height))
		b.open(s.url(path))
		b.waitFor("the Redis panel's entries", entries+` !== null`)
		if eval[bool](b, entries+`.checkVisibility()`) {
			t.Errorf("%s at phone width: the Redis panel is open, want it folded", path)
		}
		height := eval[float64](b, `document.documentElement.scrollHeight`)
		t.Logf("%s at phone width: %.0f px folded", path, height)
		// Tab from the top of the page to the summary, as a keyboard user.
		eval[bool](b, `(document.activeElement?.blur(), window.scrollTo(0, 0), true)`)
		for i := 0; i < 60 && !eval[bool](b, `document.activeElement?.dataset.testid === 'redis-fold-summary'`); i++ {
			b.do("press Tab", chromedp.KeyEvent(kb.Tab))
		}
		if !eval[bool](b, `document.activeElement?.dataset.testid === 'redis-fold-summary'`) {
			t.Fatalf("%s at phone width: Tab never reaches the panel's summary", path)
		}
		b.do("press Enter", chromedp.KeyEvent(kb.Enter))
		b.waitFor("the panel to open", entries+`.checkVisibility()`)
		if eval[float64](b, `document.documentElement.scrollHeight`) <= height {
			t.Errorf("%s at phone width: opening the panel did not lengthen the page", path)
		}
	}
	b.do("phone width", chromedp.EmulateViewport(phone.width, phone.height))
	b.open(s.url("/profile"))
	b.screenshot("profile-folded")
}

// "3 min ago" and "in 29 min" are true when the page is drawn and must stay
// true while it stays open: the page rewrites them as time passes, counted on
// the server's clock, in the server's words.
func TestBrowserRelativeTimesStayTrueOnAnOpenPage(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	b.register(s, "clock", "clock-password")
	b.open(s.url("/profile"))
	b.waitFor("the idle deadline in 30 min", `document.querySelector('[data-testid=idle-deadline] [data-until]')?.textContent === 'in 30 min'`)

	// Moments around the server's now when it drew the page (its meta), each
	// with the words views.ago and views.until give for it.
	b.waitFor("the page's own moments written in the server's words", `(() => {
		const now = Date.parse(document.querySelector('meta[name=sessionlab-now]').content);
		const cases = [['data-ago', -3e3, 'just now'], ['data-ago', 90e3, '1 min ago'], ['data-ago', (2*3600+5*60+30)*1e3, '2 h 5 min ago'],
			['data-until', 10e3, 'in less than a minute'], ['data-until', -300e3, 'in less than a minute'],
			['data-until', (45*60+10)*1e3, 'in 45 min'], ['data-until', (2*3600+60)*1e3, 'in 2 h 1 min']];
		if (!window.cases) {
			window.cases = cases.map(([attr, ms, want]) => {
				const el = document.createElement('span');
				el.setAttribute(attr, new Date(attr === 'data-ago' ? now - ms : now + ms).toISOString().replace(/\.\d+Z$/, 'Z'));
				el.textContent = 'not yet rewritten';
				document.body.append(el);
				return [el, want];
			});
		}
		return window.cases.every(([el, want]) => el.textContent === want);
	})()`)

	// Ten minutes later on this browser's clock: the footer's process and the
	// deadlines have moved on.
	eval[bool](b, `(() => { const real = Date.now.bind(Date); Date.now = () => real() + 10*60e3; return true; })()`)
	b.waitFor("the idle deadline in 20 min", `document.querySelector('[data-testid=idle-deadline] [data-until]')?.textContent === 'in 20 min'`)
	b.waitFor("the session's end in 23 h 50 min", `document.querySelector('[data-testid=abs-deadline] [data-until]')?.textContent === 'in 23 h 50 min'`)
	b.waitFor("the process started 10 min ago", `/^1[01] min ago$/.test(document.querySelector('[data-testid=process] [data-ago]')?.textContent ?? '')`)
}

// A student who edits the session's key with redis-cli, as the panel shows
// how, into something that is not a session: the next click says so (not
// "expired", nor an error page), and the next count starts a new session
// while the edited value stays in Redis for the student to look at.
func TestBrowserAnEditedSessionIsSaidToBeUnreadable(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	b.register(s, "editor", "editor-password")
	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	token := b.sessionCookie(s.url("/"))
	const edited = `{"views": "many"}`
	s.redis.MustDo("SET", "sess:"+token, edited, "KEEPTTL")

	b.click("count-button")
	b.waitFor("the login page", `location.pathname === '/login'`)
	b.waitFor("the unreadable-session banner", `document.querySelector('[data-testid=unreadable-session]') !== null`)
	if got := b.text("unreadable-session"); !strings.Contains(got, "cannot be read") || !strings.Contains(got, "left in Redis") {
		t.Errorf("unreadable-session = %q", got)
	}
	if b.present("ended-session") {
		t.Error("the page also says the session ended")
	}
	b.screenshot("unreadable-session")

	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	b.count(2)
	if b.sessionCookie(s.url("/")) == token {
		t.Error("the new session kept the edited one's token")
	}
	if got := s.redis.MustDo("GET", "sess:"+token); got != edited {
		t.Errorf("the edited value is now %q", got)
	}
}

// The same for the account: a student who edits user:<name> into something
// that is not an account is logged out by the next request, the login page
// the next click lands on says why, and a login to it names the key, which
// is left as it is.
func TestBrowserAnEditedAccountLogsOutAndSaysWhy(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	b.register(s, "edited", "edited-password")
	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	// At once, while the page's own requests (the panel's first load, the
	// stream's opening) may still be on their way: whichever logs the
	// session out, the click below lands on the login page saying why.
	s.redis.MustDo("SET", "user:edited", "edited by hand")

	b.click("count-button")
	b.waitFor("the login page saying why", `location.pathname === '/login' &&
		(document.querySelector('main')?.textContent ?? '').includes("account's key in Redis holds something that is not an account")`)
	b.screenshot("unreadable-account")
	b.fill("username", "edited")
	b.fill("password", "edited-password")
	b.click("login-submit")
	b.waitFor("the login's answer", `document.body.textContent.includes('user:edited')`)
	if got := s.redis.MustDo("GET", "user:edited"); got != "edited by hand" {
		t.Errorf("the edited account is now %q", got)
	}
}

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/views"
)

// twoInstances is `go tool task demo` in small: two app processes on one
// Redis.
func twoInstances(t *testing.T) (a, b *apptest.Process) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	rs := redistest.Start(t)
	return apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "a", "-debug-addr", "127.0.0.1:0"),
		apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "b", "-debug-addr", "127.0.0.1:0")
}

// waitStreams waits until the instance holds exactly n open event streams,
// so a test acts only once every page is listening.
func waitStreams(t *testing.T, p *apptest.Process, n int) {
	t.Helper()
	want := fmt.Sprintf("streams %d\n", n)
	deadline := time.Now().Add(stepTimeout)
	debug := p.DebugURL()
	for {
		resp, err := http.Get(debug + "/debug/live")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.HasPrefix(string(body), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %s: /debug/live = %q, want %d streams", p.Addr, body, n)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("instance %s: /debug/live: %v", p.Addr, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// The live counter: two tabs of one browser, one on each instance. A count
// in either shows in the other, with no reload and no polling.
func TestBrowserLiveCounter(t *testing.T) {
	t.Parallel()
	a, b := twoInstances(t)
	left := newBrowser(t)
	right := left.newTab()

	left.open(a.URL + "/count")
	left.waitText("view-count", "1")
	waitStreams(t, a, 1)
	right.open(b.URL + "/count") // the same session (cookies are per host), counted on b
	right.waitText("view-count", "2")
	waitStreams(t, b, 1)
	left.waitText("view-count", "2") // the view on b reached the tab on a

	eval[bool](left, `(window.sessionlabMarker = "same page", true)`)
	eval[bool](right, `(window.sessionlabMarker = "same page", true)`)
	left.count(3)
	right.waitText("view-count", "3")
	right.count(4)
	left.waitText("view-count", "4")
	// The other tab's "What's in Redis" panel follows too.
	left.waitFor("the panel shows views 4", `(document.querySelector('[data-testid="redis-value"]')?.textContent ?? '').includes('"views": 4')`)
	for _, tab := range []*browser{left, right} {
		if got := eval[string](tab, `String(window.sessionlabMarker)`); got != "same page" {
			t.Errorf("a tab was reloaded (marker %q): the count should arrive in place", got)
		}
	}
	left.screenshot("live-counter")
}

// The sessions page updates itself when the user logs in elsewhere, and a
// tab whose session is revoked elsewhere goes to the login page.
func TestBrowserSessionsPageIsLive(t *testing.T) {
	t.Parallel()
	a, b := twoInstances(t)
	laptop := newBrowser(t)
	phone := laptop.privateWindow()
	site := func(p *apptest.Process) *site { return &site{app: p} }

	laptop.register(site(a), "alice", "alice-password")
	laptop.open(a.URL + "/sessions")
	waitStreams(t, a, 1)
	if n := eval[int](laptop, `document.querySelectorAll('[data-testid="session-row"]').length`); n != 1 {
		t.Fatalf("sessions page shows %d rows, want 1", n)
	}

	phone.login(site(b), "alice", "alice-password")
	laptop.waitFor("the login on b appears on a", `document.querySelectorAll('[data-testid="session-row"]').length === 2`)
	phone.open(b.URL + "/sessions")
	waitStreams(t, b, 1)
	laptop.screenshot("sessions")

	laptop.click("revoke")
	phone.waitFor("the revoked tab is sent to log in", `location.pathname + location.search === "/login?from=expired"`)
	if got := phone.text("notice"); !strings.Contains(got, "revoked") {
		t.Errorf("login page notice = %q, want it to say the session was revoked", got)
	}
	laptop.waitFor("the list shows this device only", `document.querySelectorAll('[data-testid="session-row"]').length === 1`)
}

// Before the session would end for idleness, the profile warns and offers
// "stay signed in"; the button touches the session. (Here the idle timeout
// is shorter than the warning time, so the warning is there at once.)
func TestBrowserStaySignedIn(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	rs := redistest.Start(t)
	app := apptest.Start(t, bin, "-redis", rs.URL(), "-idle", "100s")
	b := newBrowser(t)
	b.register(&site{app: app}, "alice", "alice-password")
	b.open(app.URL + "/profile")
	if !b.present("idle-warning") {
		t.Fatalf("the profile shows no warning with the session ending in under two minutes")
	}
	b.waitFor("the stream's warning", `document.querySelector('[data-testid="stay-signed-in"][data-pushed]') !== null`)
	b.screenshot("stay-signed-in")
	b.click("stay-button")
	b.waitFor("the touch is confirmed", `document.querySelector('[data-testid="touched"]') !== null`)
	if b.present("idle-warning") {
		t.Errorf("the warning is still shown after staying signed in")
	}
}

// Logging out in one tab ends the session in the others, on any instance:
// they go to the login page on their own instead of showing a session that
// is gone. The tab that logged out keeps its own history (Back works).
func TestBrowserLogoutReachesTheOtherTabs(t *testing.T) {
	t.Parallel()
	a, b := twoInstances(t)
	left := newBrowser(t)
	right := left.newTab()

	left.registerAt(a.URL, "otto", "otto-password")
	left.open(a.URL + "/profile")
	right.open(b.URL + "/count")
	right.waitText("view-count", "1")
	waitStreams(t, a, 1)
	waitStreams(t, b, 1)

	left.click("logout")
	left.waitFor("the logout notice", `document.querySelector('[data-testid=notice]') !== null`)
	right.waitFor("the other tab at the login page", `location.pathname === '/login'`)
	if right.present("view-count") {
		t.Errorf("the other tab still shows the counter")
	}
	left.back("/profile")
	if !left.present("login-prompt") {
		t.Errorf("Back in the tab that logged out does not show the login prompt")
	}
}

// A login in one tab renews the session's token; a tab open on the old
// token reloads with the new one (logged in, its count carried over)
// instead of counting into a session that is gone.
func TestBrowserLoginInAnotherTabReloadsThisOne(t *testing.T) {
	t.Parallel()
	a, _ := twoInstances(t)
	setup := newBrowser(t).privateWindow()
	setup.registerAt(a.URL, "pia", "pia-password")

	left := newBrowser(t)
	left.open(a.URL + "/count")
	left.waitText("view-count", "1")
	left.open(a.URL + "/count") // now with a session, so with a stream
	left.waitText("view-count", "2")
	waitStreams(t, a, 2) // setup's profile and left's counter
	right := left.newTab()
	right.loginAt(a.URL, "pia", "pia-password")

	left.waitFor("the counter tab to reload logged in", `(document.querySelector('[data-testid=whoami]')?.textContent ?? '').includes('pia')`)
	// The reload is a GET /count, so it counted a view: the two from before
	// the login came along, and this is the third.
	left.waitText("view-count", "3")
	left.count(4)
}

// A password change renews this tab's token too: the tab lands on the
// sessions page with the notice, logged in, and stays there (its own
// "ended" event must not send it anywhere else).
func TestBrowserPasswordChangeKeepsThisTab(t *testing.T) {
	t.Parallel()
	a, _ := twoInstances(t)
	b := newBrowser(t)
	b.registerAt(a.URL, "quinn", "quinn-password")
	b.open(a.URL + "/sessions")
	waitStreams(t, a, 1)
	b.recordPages()
	b.fill("current-password", "quinn-password")
	b.fill("new-password", "quinn-new-password")
	b.click("password-submit")
	// The one page the tab may load is the one it is sent to.
	b.waitFor("the password notice", `(() => {
		if (sessionStorage.getItem('pages') !== null && location.search !== '?from=password') throw new Error('the tab went to ' + location.pathname + location.search);
		return (document.querySelector('[data-testid=notice]')?.textContent ?? '').includes('password is changed');
	})()`)

	// An "ended" event reaching this page would send it away a second
	// later. Rather than wait and see, log in elsewhere once the page
	// listens: the "sessions" event that tells it so comes after anything
	// sent to it before, so it must arrive with no "ended" ahead of it.
	b.waitFor("the page's live stream", `(window.liveEvents ?? []).includes('open')`)
	if s := apptest.PostForm(t, apptest.Client(t), a.URL+"/login", url.Values{"username": {"quinn"}, "password": {"quinn-new-password"}}); s != http.StatusSeeOther {
		t.Fatalf("login elsewhere: %d", s)
	}
	b.waitFor("the sessions event, with no ended event before it", fmt.Sprintf(`(() => {
		const seen = window.liveEvents ?? [];
		if (seen.includes(%q)) throw new Error('the page got an ended event: ' + seen.join(' '));
		return seen.includes(%q);
	})()`, views.SSEEnded, views.SSESessions))
	if got := eval[string](b, `sessionStorage.getItem('pages')`); got != "1" {
		t.Errorf("%s pages loaded since the change, want 1 (the sessions page it was sent to)", got)
	}
	if got := b.path(); got != "/sessions?from=password" {
		t.Errorf("after the password change the tab is at %s, want /sessions?from=password", got)
	}
	if got := b.text("whoami"); !strings.Contains(got, "quinn") {
		t.Errorf("after the password change the header shows %q, want quinn logged in", got)
	}
}

// "Log out everywhere else" renews this tab's token as a password change
// does: the tab lands on the sessions page with the notice, logged in, and
// the notice stays (the old token's "ended" event must not reload it away).
func TestBrowserLogOutEverywhereElseKeepsItsNotice(t *testing.T) {
	t.Parallel()
	a, _ := twoInstances(t)
	b := newBrowser(t)
	b.registerAt(a.URL, "rhea", "rhea-password")
	if s := apptest.PostForm(t, apptest.Client(t), a.URL+"/login", url.Values{"username": {"rhea"}, "password": {"rhea-password"}}); s != http.StatusSeeOther {
		t.Fatalf("login elsewhere: %d", s)
	}
	b.open(a.URL + "/sessions")
	waitStreams(t, a, 1)
	b.recordPages()
	b.click("revoke-others")
	notice := `(document.querySelector('[data-testid=notice]')?.textContent ?? '').includes('Every other session of yours is logged out')`
	b.waitFor("the notice", notice)

	// An "ended" event reloads a page a second after it comes, and the old
	// token's stream ends at the click: two seconds show whether that
	// reaches the page.
	b.waitFor("the page's live stream", `(window.liveEvents ?? []).includes('open')`)
	time.Sleep(2 * time.Second)
	if !eval[bool](b, notice) {
		t.Errorf("the notice is gone: the tab is at %s, %s pages loaded since the click", b.path(), eval[string](b, `sessionStorage.getItem('pages')`))
	}
	if got := eval[string](b, `sessionStorage.getItem('pages')`); got != "1" {
		t.Errorf("%s pages loaded since the click, want 1 (the sessions page it was sent to)", got)
	}
	if seen := eval[string](b, `(window.liveEvents ?? []).join(' ')`); strings.Contains(seen, views.SSEEnded) {
		t.Errorf("the page got an ended event: %s", seen)
	}
	if got := b.text("whoami"); !strings.Contains(got, "rhea") {
		t.Errorf("after logging out everywhere else the header shows %q, want rhea logged in", got)
	}
}

// recordPages makes every page this tab loads from now on count itself in
// sessionStorage (so a redirect or reload shows) and record, from its very
// start, its live stream opening and the events it hears, in
// window.liveEvents.
func (b *browser) recordPages() {
	b.t.Helper()
	script := fmt.Sprintf(`
sessionStorage.setItem('pages', String(Number(sessionStorage.getItem('pages') ?? 0) + 1));
window.liveEvents = [];
document.addEventListener(%q, () => window.liveEvents.push('open'));
document.addEventListener(%q, e => window.liveEvents.push(e.detail.type));`, views.EventLiveOpen, views.EventLiveMessage)
	b.do("record the pages this tab loads", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: script})
		return err
	}))
}

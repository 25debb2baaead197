package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// The practice exercises, done by a real browser (headless Chromium). Each
// test starts its own Redis, app process and browser; `go test -short`
// skips them.

// register creates an account through the register form and waits for the
// profile it lands on.
func (b *browser) register(s *site, name, password string) {
	b.t.Helper()
	b.registerAt(s.app.URL, name, password)
}

// registerAt is register on the app at base.
func (b *browser) registerAt(base, name, password string) {
	b.t.Helper()
	b.submitAccountForm(base, "register", name, password)
}

// login logs in through the login form and waits for the profile.
func (b *browser) login(s *site, name, password string) {
	b.t.Helper()
	b.loginAt(s.app.URL, name, password)
}

// loginAt is login on the app at base.
func (b *browser) loginAt(base, name, password string) {
	b.t.Helper()
	b.submitAccountForm(base, "login", name, password)
}

// submitAccountForm fills the register or login form (its page and its
// submit button share the name) and waits for the profile.
func (b *browser) submitAccountForm(base, form, name, password string) {
	b.t.Helper()
	b.open(base + "/" + form)
	b.fill("username", name)
	b.fill("password", password)
	b.click(form + "-submit")
	b.waitText("hello", "Hello "+name)
}

// count clicks the counter's control and waits for the number to become want.
func (b *browser) count(want int) {
	b.t.Helper()
	b.click("count-button")
	b.waitText("view-count", strconv.Itoa(want))
	if b.noJS {
		return
	}
	// Only the number is swapped, so the keyboard user's focus stays put.
	b.waitFor("focus to stay on the count button", `document.activeElement?.dataset.testid === 'count-button'`)
}

// viewsInRedis is `views` of the browser's session, as Redis holds it.
func (s *site) viewsInRedis(t *testing.T, b *browser) int {
	t.Helper()
	token := b.sessionCookie(s.app.URL)
	if token == "" {
		t.Fatal("the browser has no session cookie")
	}
	raw := s.redis.MustDo("GET", "sess:"+token)
	if raw == "" {
		t.Fatalf("no key sess:<token> in Redis for the browser's cookie")
	}
	var stored struct {
		Values struct {
			Views int `json:"views"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(raw), &stored); err != nil {
		t.Fatalf("session in Redis is not JSON: %v\n%s", err, raw)
	}
	return stored.Values.Views
}

// Exercise 1: register, log out, log in again through the real forms; the
// protected page greets the user by name.
func TestBrowserRegisterAndLogIn(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)

	b.register(s, "alice", "correct-horse")
	if got := b.path(); got != "/profile" {
		t.Errorf("after registering the address is %s, want /profile", got)
	}
	if got := b.text("whoami"); !strings.Contains(got, "alice") {
		t.Errorf("header shows %q, want the logged-in user alice", got)
	}
	if !b.present("nav-sessions") {
		t.Errorf("the nav has no Sessions link after logging in (without a reload)")
	}
	b.createdByThisProcess("right after registering")

	b.click("logout")
	b.waitFor("the logout notice", `document.querySelector('[data-testid=notice]') !== null`)
	b.login(s, "alice", "correct-horse")
	landed := b.createdByThisProcess("right after logging in")
	b.open(s.url("/profile"))
	if got := b.text("hello"); got != "Hello alice" {
		t.Errorf("profile after reload says %q, want Hello alice", got)
	}
	if got := b.createdByThisProcess("after a reload"); got != landed {
		t.Errorf("the profile's Created line changed on reload: %q, then %q", landed, got)
	}
}

// createdByThisProcess checks that the profile's "Created" line names the
// process in the footer (a session created a moment ago by this server is
// not "not recorded"), and returns the line.
func (b *browser) createdByThisProcess(when string) string {
	b.t.Helper()
	got := b.text("session-created")
	process := eval[string](b, `document.querySelector('[data-testid=process]').dataset.process`)
	if !strings.Contains(got, "by process "+process) {
		b.t.Errorf("%s the profile says Created: %q, want a time and \"by process %s\"", when, got, process)
	}
	return got
}

// A failed login shows its message on the form, and a register error sits
// next to the field it is about.
func TestBrowserFormErrors(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)

	b.open(s.url("/register"))
	b.fill("username", "x")
	b.fill("password", "long-enough-password")
	b.click("register-submit")
	b.waitFor("the username error", `document.querySelector('[data-testid=username-error]') !== null`)
	if got := eval[string](b, `document.getElementById('username').getAttribute('aria-describedby')`); !strings.Contains(got, "username-error") {
		t.Errorf("username field is described by %q, want its error", got)
	}
	if !eval[bool](b, `document.getElementById('username').nextElementSibling?.dataset.testid === 'username-error'`) {
		t.Errorf("the username error is not right after the username field")
	}

	b.open(s.url("/login"))
	b.fill("username", "nobody")
	b.fill("password", "wrong-password")
	b.click("login-submit")
	b.waitText("form-error", "Invalid username or password.")
}

// Exercise 2: the counter updates in place (no page load: a marker on window
// survives the click), and the number is what Redis holds for the session.
func TestBrowserCounterUpdatesInPlace(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)

	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	eval[bool](b, `(window.sessionlabMarker = "same page", true)`)
	for want := 2; want <= 4; want++ {
		b.count(want)
	}
	if got := eval[string](b, `String(window.sessionlabMarker)`); got != "same page" {
		t.Fatalf("window marker after clicking = %q: the click loaded a new page instead of updating in place", got)
	}
	if got := b.path(); got != "/count" {
		t.Errorf("address after counting = %s, want /count", got)
	}
	if got := s.viewsInRedis(t, b); got != 4 {
		t.Errorf("views in Redis = %d, the page shows 4", got)
	}
}

// Exercise 3: two independent browsers (a second browser context, like a
// private window) have their own session, login and count.
func TestBrowserTwoBrowsersAreIndependent(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	a := newBrowser(t)
	b := a.privateWindow()

	a.register(s, "alice", "alice-password")
	b.register(s, "bob", "bob-password")

	a.open(s.url("/count"))
	a.waitText("view-count", "1")
	a.count(2)
	a.count(3)
	b.open(s.url("/count"))
	b.waitText("view-count", "1")

	a.open(s.url("/profile"))
	b.open(s.url("/profile"))
	if got := a.text("hello"); got != "Hello alice" {
		t.Errorf("first browser's profile says %q, want Hello alice", got)
	}
	if got := b.text("hello"); got != "Hello bob" {
		t.Errorf("second browser's profile says %q, want Hello bob", got)
	}
	if got := s.viewsInRedis(t, a); got != 3 {
		t.Errorf("first browser's views in Redis = %d, want 3", got)
	}
	if got := s.viewsInRedis(t, b); got != 1 {
		t.Errorf("second browser's views in Redis = %d, want 1", got)
	}
	if a.sessionCookie(s.app.URL) == b.sessionCookie(s.app.URL) {
		t.Errorf("both browsers hold the same session cookie")
	}
}

// Exercise 4: with a page open, the app is stopped (SIGTERM) and a new
// process starts on the same Redis and address; a reload shows the same
// login and the count goes on.
func TestBrowserSessionSurvivesRestart(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)

	b.register(s, "dana", "dana-password")
	b.open(s.url("/count"))
	b.count(2)

	s.app.Stop()
	s.app = apptest.Start(t, bin, "-redis", s.redis.URL(), "-addr", s.app.Addr, "-instance", "after-restart")
	b.do("reload", chromedp.Reload())
	b.waitText("view-count", "3")
	if got := b.text("instance"); !strings.Contains(got, "after-restart") {
		t.Errorf("page served by %q, want the new process after-restart", got)
	}
	b.count(4)
	b.open(s.url("/profile"))
	if got := b.text("hello"); got != "Hello dana" {
		t.Errorf("profile after restart says %q, want Hello dana", got)
	}
}

// Redis restarted empty (no persistence) while a student was logged in: the
// next page says why the count starts over at 1 and the login is gone.
func TestBrowserEndedSessionIsExplained(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	b.register(s, "emil", "emil-password")
	b.open(s.url("/count"))
	b.count(2)

	s.redis.MustDo("FLUSHALL") // as a Redis restarted without persistence
	b.do("reload", chromedp.Reload())
	b.waitText("view-count", "1")
	if got := b.text("ended-session"); !strings.Contains(got, "Redis no longer holds") || !strings.Contains(got, "lost its data") {
		t.Errorf("ended-session = %q", got)
	}
	if got := b.text("whoami"); strings.Contains(got, "emil") {
		t.Errorf("the page still shows emil logged in: %q", got)
	}
	b.screenshot("ended-session")
	b.count(2)
	b.do("reload", chromedp.Reload())
	b.waitText("view-count", "3")
	if b.present("ended-session") {
		t.Error("the explanation is shown again for the new session")
	}
}

// Exercise 5: logging out from the page drops the cookie, /profile then asks
// for a login, and Back does not show the profile again from a cache.
func TestBrowserLogoutForgetsTheSession(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)

	b.register(s, "erin", "erin-password")
	b.open(s.url("/profile"))
	token := b.sessionCookie(s.app.URL)
	b.click("logout")
	b.waitFor("the logout notice", `document.querySelector('[data-testid=notice]') !== null`)

	if got := b.path(); got != "/login?from=logout" {
		t.Errorf("after logout the address is %s, want /login?from=logout", got)
	}
	if c := b.sessionCookie(s.app.URL); c != "" {
		t.Errorf("the session cookie is still there after logout")
	}
	if n := s.redis.MustDo("EXISTS", "sess:"+token); n != "0" {
		t.Errorf("the old session's key is still in Redis after logout")
	}

	b.back("/profile")
	if b.present("hello") {
		t.Errorf("Back shows the profile again after logout")
	}
	if !b.present("login-prompt") {
		t.Errorf("Back to /profile does not show the login prompt")
	}

	b.open(s.url("/profile"))
	if !b.present("login-prompt") || b.present("hello") {
		t.Errorf("/profile after logout does not ask for a login")
	}
}

// Exercise 6: an htmx request that meets a revoked (or expired) session
// takes the browser to the login page, rather than swapping a login form
// into the counter.
func TestBrowserRevokedSessionGoesToLogin(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)

	b.register(s, "fay", "fay-password")
	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	token := b.sessionCookie(s.app.URL)
	s.redis.MustDo("DEL", "sess:"+token) // what an expiry or a revocation leaves

	b.click("count-button")
	b.waitFor("the login page", `location.pathname === '/login'`)
	if got := b.path(); got != "/login?from=expired" {
		t.Errorf("address = %s, want /login?from=expired", got)
	}
	if got := b.text("notice"); !strings.Contains(got, "session has ended") {
		t.Errorf("login page notice = %q, want it to say the session has ended", got)
	}
	if b.present("view-count") {
		t.Errorf("the counter is still on the page")
	}
}

// Exercise 7: with JavaScript off, register, login, profile, count and logout
// work as plain forms and links.
func TestBrowserWorksWithoutJavaScript(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	b.disableJavaScript()

	b.open(s.url("/register"))
	b.fill("username", "gus")
	b.fill("password", "gus-password")
	b.click("register-submit")
	b.waitText("hello", "Hello gus")

	b.click("logout")
	b.waitFor("the logout notice", `document.querySelector('[data-testid=notice]') !== null`)
	if c := b.sessionCookie(s.app.URL); c != "" {
		t.Errorf("the session cookie is still there after logout")
	}

	b.open(s.url("/login"))
	b.fill("username", "gus")
	b.fill("password", "gus-password")
	b.click("login-submit")
	b.waitText("hello", "Hello gus")
	if got := b.path(); got != "/profile" {
		t.Errorf("after login the address is %s, want /profile", got)
	}

	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	eval[bool](b, `(window.sessionlabMarker = "first page", true)`)
	b.count(2) // a plain link: a new page
	if got := eval[string](b, `String(window.sessionlabMarker)`); got == "first page" {
		t.Errorf("with JavaScript off the count link did not load a new page")
	}
	if got := s.viewsInRedis(t, b); got != 2 {
		t.Errorf("views in Redis = %d, the page shows 2", got)
	}
	if eval[bool](b, `typeof window.htmx !== 'undefined'`) {
		t.Errorf("htmx ran although JavaScript is off")
	}

	b.click("logout")
	b.waitFor("the logout notice", `document.querySelector('[data-testid=notice]') !== null`)
	b.open(s.url("/profile"))
	if !b.present("login-prompt") {
		t.Errorf("/profile after logout does not ask for a login")
	}
}

// The pages a student compares against: each main page at desktop and phone
// width, saved to $SCREENSHOT_DIR (default: a temp dir named in the log).
func TestBrowserScreenshots(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)

	b.open(s.url("/"))
	b.waitFor("the Redis panel", `document.querySelector('[data-testid=redis-entries]') !== null`)
	b.screenshot("home")

	b.open(s.url("/register"))
	b.screenshot("register")
	b.fill("username", "x")
	b.click("register-submit")
	b.waitFor("the field error", `document.querySelector('[data-testid=username-error]') !== null`)
	b.screenshot("register-errors")

	b.register(s, "student", "student-password")
	b.open(s.url("/count"))
	b.count(2)
	b.count(3)
	b.waitFor("the Redis panel", `document.querySelector('[data-testid=redis-entry]') !== null`)
	b.screenshot("count")

	b.open(s.url("/profile"))
	b.waitFor("the Redis panel", `document.querySelector('[data-testid=redis-entry]') !== null`)
	b.screenshot("profile")

	b.click("logout")
	b.waitFor("the logout notice", `document.querySelector('[data-testid=notice]') !== null`)
	b.screenshot("logout")

	b.open(s.url("/login"))
	b.fill("username", "student")
	b.fill("password", "wrong-password")
	b.click("login-submit")
	b.waitFor("the login error", `document.querySelector('[data-testid=form-error]') !== null`)
	b.screenshot("login")
}

// Keyboard users see where they are: every control reached with Tab shows
// an outline.
func TestBrowserKeyboardFocusIsVisible(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)

	b.open(s.url("/login"))
	seen := map[string]bool{}
	for range 12 {
		b.do("press Tab", chromedp.KeyEvent(kb.Tab))
		el := eval[string](b, `(() => { const e = document.activeElement; return e === document.body ? "" : e.id || e.dataset.testid || e.textContent.trim() })()`)
		if el == "" {
			continue // past the last control
		}
		style := eval[string](b, `(() => { const c = getComputedStyle(document.activeElement); return c.outlineStyle + " " + c.outlineWidth })()`)
		if strings.HasPrefix(style, "none") || strings.HasSuffix(style, " 0px") {
			t.Errorf("focused %q has no visible outline (%s)", el, style)
		}
		seen[el] = true
	}
	for _, want := range []string{"username", "password", "login-submit"} {
		if !seen[want] {
			t.Errorf("Tab never reached %s (reached %v)", want, seen)
		}
	}
}

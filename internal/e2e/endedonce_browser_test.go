package e2e

import (
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/sessions"
)

// A session that ended elsewhere (its key gone from Redis, as after a revoke
// from another browser or an expiry) is explained once: the page that says
// so takes the cookie with it, and the next pages are plain anonymous pages,
// not a new "your session ended" each time.
func TestBrowserEndedSessionIsToldOnce(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	b.register(s, "gus", "gus-password")
	b.open(s.url("/profile"))
	token := b.sessionCookie(s.app.URL)
	s.redis.MustDo("DEL", "sess:"+token)

	b.open(s.url("/profile"))
	if got := b.text("ended-session"); !strings.Contains(got, "Redis no longer holds") {
		t.Fatalf("the first page after the session ended: ended-session = %q", got)
	}
	b.screenshot("ended-told")
	if c := b.sessionCookie(s.app.URL); c != "" {
		t.Error("the page that explains the ended session leaves its cookie in the browser")
	}

	for _, path := range []string{"/profile", "/", "/redis"} {
		b.open(s.url(path))
		if b.present("ended-session") {
			t.Errorf("%s after the explanation says again that the session ended", path)
		}
	}
	b.screenshot("ended-after")
	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	if b.present("ended-session") {
		t.Error("the first count after the explanation says again that the session ended")
	}
}

// Two tabs on the profile when the session is revoked from elsewhere: each
// tab's session-ended hook takes it to the login page that says the session
// ended, and after that the browser holds no cookie and no page repeats it.
func TestBrowserEndedSessionInTwoTabs(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	one := newBrowser(t)
	one.register(s, "hal", "hal-password")
	one.open(s.url("/profile"))
	two := one.newTab()
	two.open(s.url("/profile"))
	waitStreams(t, s.app, 1) // the tabs share one stream (live.js)
	token := one.sessionCookie(s.app.URL)

	// What a revoke from another browser does: the key goes, open pages hear it.
	s.redis.MustDo("DEL", "sess:"+token)
	s.redis.MustDo("PUBLISH", sessions.SessionChannel(sessions.ID(token)), sessions.MsgEnded)
	// Each tab's hook asks the server a second after the news. The first
	// answer's login page says the session ended and expires the cookie; a
	// tab whose hook comes after that has no cookie left, which is what a
	// logout leaves too, so it may say "logged out" (also true: its key is
	// gone). Which tab is first is the machine's, not the app's, choice.
	expired := 0
	for _, tab := range []*browser{one, two} {
		tab.waitFor("the login page", `location.pathname === '/login'`)
		tab.waitFor("its notice", `document.querySelector('[data-testid=notice]') !== null`)
		switch got := tab.path(); got {
		case "/login?from=expired":
			expired++
		case "/login?from=logout":
		default:
			t.Errorf("a tab went to %s, want /login?from=expired (or from=logout, after the other tab was told)", got)
		}
	}
	if expired == 0 {
		t.Error("no tab said the session ended")
	}
	two.screenshot("ended-two-tabs")
	if c := one.sessionCookie(s.app.URL); c != "" {
		t.Error("the browser still holds the ended session's cookie")
	}
	two.open(s.url("/profile"))
	if two.present("ended-session") {
		t.Error("a page after the login page says again that the session ended")
	}
}

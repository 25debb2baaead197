package handlers

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/sessions"
)

const endedBanner = `data-testid="ended-session"`

// expired reports whether a Set-Cookie line expires its cookie.
func expired(line string) bool {
	return strings.Contains(line, "Max-Age=0") || strings.Contains(line, "Expires=Thu, 01 Jan 1970")
}

// endedSession leaves c logged in with a session that has then ended the
// way end says, and returns its token.
func (ta *testApp) endedSession(c *http.Client, name string, end func(token string)) string {
	ta.t.Helper()
	ta.register(c, name, name+"-password")
	token := ta.token(c)
	end(token)
	return token
}

// A browser whose cookie names a session that ended elsewhere is told once:
// the whole page that says so also expires the cookie, with the attributes
// it was set with, so the browser's next pages are plain anonymous pages.
func TestAnEndedSessionIsToldOnce(t *testing.T) {
	ta := newTestApp(t)
	ends := map[string]func(token string){
		"revoked or expired (its key gone)": func(token string) { ta.redis.MustDo("DEL", sessions.Key(token)) },
		"Redis restarted empty":             func(string) { ta.redis.MustDo("FLUSHALL") },
	}
	i := 0
	for how, end := range ends {
		for _, path := range []string{"/profile", "/", "/redis", "/lab"} {
			t.Run(how+" "+path, func(t *testing.T) {
				i++
				c := ta.client()
				ta.endedSession(c, "ended"+strconv.Itoa(i), end)
				r := ta.get(c, path)
				if !strings.Contains(r.body, endedBanner) {
					t.Fatalf("GET %s with the ended session's cookie: %d, no explanation", path, r.status)
				}
				line := setCookieOf(r, "session")
				if !expired(line) || !strings.Contains(line, "HttpOnly") || !strings.Contains(line, "SameSite=Lax") ||
					!strings.Contains(line, "Path=/") || strings.Contains(line, "Domain") {
					t.Errorf("the page that explains the ended session sets %q, want the cookie expired with its attributes", line)
				}
				if ta.token(c) != "" {
					t.Fatal("the browser still holds the ended session's cookie")
				}
				for _, next := range []string{"/profile", "/", "/redis", "/lab"} {
					if r := ta.get(c, next); strings.Contains(r.body, endedBanner) || r.header.Get("Set-Cookie") != "" {
						t.Errorf("GET %s after the explanation: explained again %v, Set-Cookie %q; want a plain anonymous page",
							next, strings.Contains(r.body, endedBanner), r.header.Get("Set-Cookie"))
					}
				}
			})
		}
	}
}

// With -cookie-secure the expired cookie is __Host-session, Secure, as the
// cookie it replaces.
func TestAnEndedSecureCookieIsExpiredAsItWasSet(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Sessions.Cookie = SessionCookie(true) })
	stale := strings.Repeat("A", tokenLen)
	r := ta.get(ta.client(), "/profile", "Cookie", "__Host-session="+stale)
	if !strings.Contains(r.body, endedBanner) {
		t.Fatal("no explanation for the ended session")
	}
	line := setCookieOf(r, "__Host-session")
	for _, want := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !expired(line) || !strings.Contains(line, want) {
			t.Errorf("Set-Cookie %q, want __Host-session expired with %s", line, want)
		}
	}
	if strings.Contains(line, "Domain") {
		t.Errorf("Set-Cookie %q has a Domain, which __Host- forbids", line)
	}
}

// The login page an htmx page is sent to when its session ended
// (/login?from=expired) says so, so it takes the cookie too; the answers
// that say nothing about it (an htmx fragment, the live stream, the
// session-ended hook's redirect) leave it for that page.
func TestOnlyAPageThatExplainsExpiresTheCookie(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.endedSession(c, "quiet", func(token string) { ta.redis.MustDo("DEL", sessions.Key(token)) })
	for _, req := range []struct {
		what    string
		path    string
		headers []string
	}{
		{"an htmx fragment", "/profile", []string{"HX-Request", "true"}},
		{"the Redis panel", "/redis", []string{"HX-Request", "true", "HX-Target", "redis-panel"}},
		{"the counter's click", "/count", []string{"HX-Request", "true", "HX-Target", "view-count"}},
		{"the session-ended hook", "/profile", []string{"HX-Request", "true", "HX-Trigger", "session-hook"}},
		{"the live stream", "/live", nil},
	} {
		if r := ta.get(c, req.path, req.headers...); setCookieOf(r, "session") != "" {
			t.Errorf("%s (GET %s) sets %q", req.what, req.path, setCookieOf(r, "session"))
		}
	}
	if ta.token(c) == "" {
		t.Fatal("the cookie went before any page said the session ended")
	}
	r := ta.get(c, "/login?from=expired")
	if strings.Contains(r.body, endedBanner) || !expired(setCookieOf(r, "session")) {
		t.Errorf("the login page after an ended session: banner %v, Set-Cookie %q; want its notice alone and the cookie expired",
			strings.Contains(r.body, endedBanner), setCookieOf(r, "session"))
	}
}

// Another tab's request that replaced the ended cookie with a new session
// (a login, a count) may be answered first: a page sent meanwhile with the
// ended cookie still explains, but must not expire the browser's cookie,
// which now names the new session.
func TestTheExplanationNeverExpiresACookieRenewedMeanwhile(t *testing.T) {
	ta := newTestApp(t)
	for _, replace := range []struct {
		what string
		do   func(c *http.Client)
	}{
		{"a login", func(c *http.Client) { ta.login(c, "tab", "tab-password") }},
		{"a count", func(c *http.Client) { ta.get(c, "/count") }},
	} {
		t.Run(replace.what, func(t *testing.T) {
			c := ta.client()
			if replace.what == "a login" {
				ta.register(c, "tab", "tab-password")
			} else {
				ta.anonymousSession(c)
			}
			old := ta.token(c)
			ta.redis.MustDo("DEL", sessions.Key(old))
			replace.do(c) // the first tab's request, answered first
			if ta.token(c) == old || ta.token(c) == "" {
				t.Fatalf("%s did not give the browser a new session", replace.what)
			}
			late := ta.clientWithToken(old) // the second tab's, sent before it
			r := ta.get(late, "/profile")
			if line := setCookieOf(r, "session"); line != "" {
				t.Errorf("the page sent with the ended cookie after %s set %q, which would replace the new session's", replace.what, line)
			}
		})
	}
	if r := ta.get(ta.clientWithToken(strings.Repeat("B", tokenLen)), "/profile"); !expired(setCookieOf(r, "session")) {
		t.Error("an ended cookie nobody replaced is not expired")
	}
}

package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/sessions"
)

// lostRenewal leaves in Redis what a renewal (a login, a password change)
// leaves when Redis ran its take but the request's budget ran out before the
// new session was saved: the old key gone, the old token marked renewed
// with its views, and no new token anywhere, since the answer that would
// have carried it was a 503. ago is how long before now that happened.
func (ta *testApp) lostRenewal(token string, views int, ago time.Duration) {
	ta.t.Helper()
	ta.redis.MustDo("DEL", sessions.Key(token))
	ta.redis.MustDo("SET", sessions.RenewedKey(token), strconv.Itoa(views),
		"PX", strconv.FormatInt((sessions.RenewedFor-ago).Milliseconds(), 10))
}

// A browser whose renewal's answer was lost keeps sending the old token. Once
// no request sent before that answer can still be arriving, "Session renewed,
// reload the page" is untrue: no reload will ever carry the new token, and
// for the marker's minute every page said it again (seen under a SIGSTOP of
// Redis during a password change: 409 on every page, then logged out). Such
// a browser is told its session ended, as any ended session's browser is.
func TestARenewalWhoseAnswerWasLostIsNoReloadLoop(t *testing.T) {
	ta := newTestApp(t)
	for i, path := range []string{"/profile", "/count", "/sessions", "/"} {
		t.Run(path, func(t *testing.T) {
			c := ta.client()
			name := "lostrenewal" + strconv.Itoa(i)
			ta.register(c, name, name+"-password")
			ta.get(c, "/count")
			token := ta.token(c)
			ta.lostRenewal(token, 1, sessions.RenewalInFlight+time.Second)

			r := ta.get(c, path)
			if r.status == http.StatusConflict {
				t.Fatalf("GET %s %s after the renewal: 409 %q; a reload cannot help this browser", path,
					strconv.FormatInt(int64((sessions.RenewalInFlight+time.Second)/time.Second), 10)+"s", problemTitle(r.body))
			}
			if !strings.Contains(r.body, endedBanner) {
				t.Errorf("GET %s: %d, no ended-session explanation", path, r.status)
			}
			// The cookie stays for the marker's minute (Replaced), so that
			// logging in again can pick up the views the marker holds.
			// Logging in again picks the views up, as a login after any renewal does.
			if r := ta.post(c, "/login", url.Values{"username": {name}, "password": {name + "-password"}}); r.status != http.StatusSeeOther {
				t.Fatalf("login again: %d %q", r.status, problemTitle(r.body))
			}
			if got := viewCount(t, ta.get(c, "/count").body); path != "/count" && got != "2" {
				t.Errorf("count after logging in again: %s, want 2 (the views the renewal carried, plus this one)", got)
			}
		})
	}
}

// A request that crossed the renewal in flight (a second tab, a form sent
// twice) still gets the 409: its browser has the new token, and a new
// session's cookie in this answer would replace it.
func TestARequestCrossingARenewalStillReloads(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "crossing", "crossing-password")
	ta.get(c, "/count")
	token := ta.token(c)
	ta.lostRenewal(token, 1, 0)
	for _, path := range []string{"/profile", "/count"} {
		r := ta.get(c, path)
		if r.status != http.StatusConflict || r.header.Get("Set-Cookie") != "" {
			t.Errorf("GET %s just after the renewal: %d, Set-Cookie %q; want 409 and no cookie", path, r.status, r.header.Get("Set-Cookie"))
		}
	}
}

// problemTitle is the title of a problem page ("" when it is none).
func problemTitle(body string) string {
	const marker = `data-testid="problem-title">`
	i := strings.Index(body, marker)
	if i < 0 {
		return ""
	}
	rest := body[i+len(marker):]
	return rest[:strings.Index(rest, "<")]
}

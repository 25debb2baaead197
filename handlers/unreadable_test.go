package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/sessions"
)

// A session whose stored value the app cannot read (a student's edit with
// redis-cli, the panel's own suggestion) is not an error page on every
// request until the cookie goes: the browser is told so and starts a new
// session, and the value is left in Redis as it is, for whoever changed it.
func TestAnUnreadableSessionStartsAfreshAndIsLeftAsItIs(t *testing.T) {
	ta := newTestApp(t)
	for _, edit := range []struct {
		value string
		set   []string // SET's options: KEEPTTL, or none, which leaves the key without an expiry
	}{
		{`not a session`, []string{"KEEPTTL"}},                                              // not JSON
		{`{"deadline":"2030-01-01T00:00:00Z"}`, []string{"KEEPTTL"}},                        // JSON, no values
		{`{"deadline":"2030-01-01T00:00:00Z","values":{"user":"vi"}}`, []string{"KEEPTTL"}}, // a value of the wrong type
		{`{"deadline":"2030-01-01T00:00:00Z","values":{"views":"many"}}`, nil},              // and no expiry
	} {
		value := edit.value
		t.Run(value, func(t *testing.T) {
			c := ta.client()
			name := "u" + strconv.Itoa(len(value))
			ta.register(c, name, name+"-password")
			old := ta.token(c)
			ta.redis.MustDo(append([]string{"SET", sessions.Key(old), value}, edit.set...)...)
			ttl := ta.redis.MustDo("PTTL", sessions.Key(old))
			leftAsItIs := func() {
				t.Helper()
				if got := ta.redis.MustDo("GET", sessions.Key(old)); got != value {
					t.Fatalf("the stored value is now %q, want it left as %q", got, value)
				}
				if now := ta.redis.MustDo("PTTL", sessions.Key(old)); (now == "-1") != (ttl == "-1") {
					t.Fatalf("the stored value's expiry changed: PTTL %s, then %s", ttl, now)
				}
			}

			r := ta.get(c, "/profile")
			if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `data-testid="unreadable-session"`) ||
				!strings.Contains(r.body, "Please log in") {
				t.Fatalf("GET /profile: %d, want 401 with the unreadable-session banner and the login prompt:\n%s", r.status, r.body)
			}
			if strings.Contains(r.body, `data-testid="ended-session"`) {
				t.Error("the page says the session ended; Redis still holds it")
			}
			leftAsItIs()

			r = ta.get(c, "/redis")
			if !strings.Contains(r.body, "not a session this app can read") || !strings.Contains(r.body, sessions.CutSessionKey(old)) {
				t.Errorf("the Redis page does not show the unreadable key:\n%s", r.body)
			}
			if strings.Contains(r.body, old) {
				t.Error("the Redis page carries the full token")
			}

			r = ta.get(c, "/profile", "HX-Request", "true")
			if r.status != http.StatusUnauthorized || r.header.Get("HX-Redirect") != "/login" {
				t.Errorf("htmx GET /profile: %d, HX-Redirect %q; want 401 to the login page, whose banner says why",
					r.status, r.header.Get("HX-Redirect"))
			}
			if r := ta.get(c, "/login"); !strings.Contains(r.body, `data-testid="unreadable-session"`) {
				t.Errorf("GET /login: no unreadable-session banner:\n%s", r.body)
			}

			r = ta.get(c, "/count")
			if r.status != http.StatusOK || countShown(t, r.body) != "1" {
				t.Fatalf("GET /count: %d, want 200 counting 1 in a new session", r.status)
			}
			if tok := ta.token(c); tok == old || tok == "" {
				t.Fatalf("GET /count kept the unreadable session's token")
			}
			if r := ta.get(c, "/count"); strings.Contains(r.body, `data-testid="unreadable-session"`) || countShown(t, r.body) != "2" {
				t.Errorf("the new session's next count: banner still shown or count %s, want 2", countShown(t, r.body))
			}
			r = ta.post(c, "/login", url.Values{"username": {name}, "password": {name + "-password"}})
			if r.status != http.StatusSeeOther {
				t.Fatalf("POST /login: %d, want 303", r.status)
			}
			if r := ta.get(c, "/profile"); r.status != http.StatusOK {
				t.Errorf("GET /profile after logging in again: %d", r.status)
			}
			leftAsItIs()

			logs := ta.logs.String()
			if !strings.Contains(logs, "session unreadable") || !strings.Contains(logs, ta.app.LogID(old)) {
				t.Errorf("no warning naming the session's log id:\n%s", logs)
			}
			if strings.Contains(logs, old) {
				t.Error("the log carries the full token")
			}
		})
	}
}

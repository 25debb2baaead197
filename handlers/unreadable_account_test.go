package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessionstack"
)

// An account whose stored value the app cannot read (user:<name> changed by
// hand with redis-cli: not JSON, a field of the wrong type, a hash) is not
// an error page on every request of every browser logged in to it, with no
// way out: the sessions are logged out and say why, a login to it says why,
// the value is left as it is, other users do not notice, and once the value
// is an account again its password logs in.
func TestAnUnreadableAccountLogsOutAndSaysWhy(t *testing.T) {
	ta := newTestApp(t)
	for _, tc := range []struct {
		name string
		edit []string
	}{
		{"garbage", []string{"SET", "", "not an account"}},
		{"gen-number", []string{"SET", "", `{"username":"x","role":"student","hash":"","gen":5}`}},
		{"hash", []string{"HSET", "", "username", "x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, password := "acct-"+tc.name, "acct-"+tc.name+"-password"
			key := accounts.Key(name)
			c, other := ta.client(), ta.client()
			ta.register(c, name, password)
			ta.register(other, "other-"+tc.name, "other-password")
			original := ta.redis.MustDo("GET", key)
			if tc.edit[0] != "SET" {
				ta.redis.MustDo("DEL", key)
			}
			ta.redis.MustDo(append([]string{tc.edit[0], key}, tc.edit[2:]...)...)
			kind := ta.redis.MustDo("TYPE", key)

			r := ta.get(c, "/profile")
			if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `data-testid="unreadable-account"`) ||
				!strings.Contains(r.body, key) {
				t.Fatalf("GET /profile: %d, want 401 saying %s cannot be read:\n%s", r.status, key, r.body)
			}
			if strings.Contains(r.body, `data-testid="ended-session"`) {
				t.Error("the page also says Redis no longer held the session, which it did")
			}
			if r := ta.get(c, "/count"); r.status != http.StatusOK || countShown(t, r.body) != "1" {
				t.Errorf("GET /count: %d, want 200 counting 1 in a new session", r.status)
			}
			if r := ta.get(c, "/profile", "HX-Request", "true"); r.status != http.StatusUnauthorized {
				t.Errorf("htmx GET /profile afterwards: %d, want 401", r.status)
			}
			if r := ta.get(other, "/profile"); r.status != http.StatusOK {
				t.Errorf("another user's GET /profile: %d, want 200", r.status)
			}

			r = ta.post(c, "/login", url.Values{"username": {name}, "password": {password}})
			if r.status != http.StatusConflict || !strings.Contains(r.body, key) {
				t.Errorf("POST /login: %d, want 409 saying %s cannot be read:\n%s", r.status, key, r.body)
			}
			if got := ta.redis.MustDo("TYPE", key); got != kind {
				t.Errorf("the edited key is now a %s, want it left a %s", got, kind)
			}

			ta.redis.MustDo("DEL", key)
			ta.redis.MustDo("SET", key, original)
			if r := ta.post(c, "/login", url.Values{"username": {name}, "password": {password}}); r.status != http.StatusSeeOther {
				t.Fatalf("POST /login with the account put back: %d, want 303", r.status)
			}
			if r := ta.get(c, "/profile"); r.status != http.StatusOK {
				t.Errorf("GET /profile after logging in again: %d", r.status)
			}
			ta.noErrorLogged(t)
		})
	}
}

// An account deleted by hand (DEL user:<name>) logs its sessions out, and
// the page's list of how a session ends names that too.
func TestADeletedAccountIsAmongTheEndsTheBannerNames(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "gone", "gone-password")
	ta.redis.MustDo("DEL", accounts.Key("gone"))
	r := ta.get(c, "/profile")
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `data-testid="ended-session"`) ||
		!strings.Contains(r.body, "its account was deleted") {
		t.Fatalf("GET /profile after DEL %s: %d, want 401 with the ended-session banner naming a deleted account:\n%s",
			accounts.Key("gone"), r.status, r.body)
	}
}

// A session can end under a request whose answer cannot say why: the Redis
// panel's first load or a fragment, sent as the student edits the account.
// Its cookie then stays until a page says why (the next whole page, or the
// login page an htmx click is sent to), and that page names the edited key
// even though the request that found it is over.
func TestASessionEndedUnderAnAnswerThatCannotSaySoIsExplainedNext(t *testing.T) {
	for _, mode := range []sessionstack.Mode{sessionstack.Redis, sessionstack.Memory} {
		t.Run(string(mode), func(t *testing.T) {
			rs := redistest.Start(t)
			explainedNext(t, wireTestApp(t, rs, testConfig(rs, mode)).serve())
		})
	}
}

func explainedNext(t *testing.T, ta *testApp) {
	panel := []string{"HX-Request", "true", "HX-Target", "redis-panel"}
	for i, tc := range []struct {
		name   string
		edit   func(key string)
		banner string // what the next whole page says
	}{
		{"account edited by hand", func(key string) { ta.redis.MustDo("SET", key, "edited by hand") }, `data-testid="unreadable-account"`},
		{"account deleted", func(key string) { ta.redis.MustDo("DEL", key) }, endedBanner},
	} {
		for j, next := range []string{"a whole page", "an htmx click"} {
			t.Run(tc.name+", then "+next, func(t *testing.T) {
				c := ta.client()
				name := fmt.Sprintf("under-%d-%d", i, j)
				ta.register(c, name, "under-password")
				key := accounts.Key(name)
				tc.edit(key)
				if r := ta.get(c, "/redis", panel...); setCookieOf(r, "session") != "" {
					t.Fatalf("the panel's answer, which says nothing of the session, sets %q", setCookieOf(r, "session"))
				}
				if ta.token(c) == "" {
					t.Fatal("the cookie went before any page said why the session ended")
				}
				var r response
				if next == "a whole page" {
					r = ta.get(c, "/profile")
					if !strings.Contains(r.body, tc.banner) {
						t.Fatalf("the next page: %d, want it to say why (%s):\n%s", r.status, tc.banner, r.body)
					}
					if tc.banner != endedBanner && !strings.Contains(r.body, key) {
						t.Errorf("the next page does not name %s", key)
					}
				} else {
					r = ta.get(c, "/count", "HX-Request", "true", "HX-Target", "view-count")
					want := "/login?from=expired"
					if tc.banner != endedBanner {
						want = "/login?from=account"
					}
					if got := r.header.Get("HX-Redirect"); got != want {
						t.Fatalf("the click: %d, HX-Redirect %q, want %q", r.status, got, want)
					}
					if setCookieOf(r, "session") != "" {
						t.Errorf("the click's redirect sets %q before the login page says why", setCookieOf(r, "session"))
					}
					r = ta.get(c, want)
					if strings.Contains(r.body, tc.banner) {
						t.Errorf("the login page shows a banner besides its notice")
					}
				}
				if !expired(setCookieOf(r, "session")) {
					t.Errorf("the page that says why sets %q, want the cookie expired", setCookieOf(r, "session"))
				}
				if r := ta.get(c, "/profile"); strings.Contains(r.body, tc.banner) || strings.Contains(r.body, endedBanner) {
					t.Error("the page after it says it again")
				}
			})
		}
	}
}

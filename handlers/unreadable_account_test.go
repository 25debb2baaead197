package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/accounts"
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

package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// A user's session index of another type (SET or ZADD over the hash with
// redis-cli) does not fail that user's every count, list, logout, login and
// password change, with no way out (a logout that answered 500 left the
// browser logged in): the index is derived data, so it is deleted and
// starts again, with a WARN, and each route does what it says.
func TestAUsersSessionIndexOfAnotherTypeStartsAgain(t *testing.T) {
	for _, tc := range []struct {
		name, kind string
		edit       []string
	}{
		{"string", "string", []string{"SET", "", "not an index"}},
		{"zset", "zset", []string{"ZADD", "", "1", "not-an-entry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestApp(t)
			const name, password = "indexed", "indexed-password"
			key := sessions.IndexKey(name)
			edit := func() {
				t.Helper()
				ta.redis.MustDo("DEL", key)
				ta.redis.MustDo(append([]string{tc.edit[0], key}, tc.edit[2:]...)...)
			}
			c, c2, bob := ta.client(), ta.client(), ta.client()
			ta.register(c, name, password)
			ta.login(c2, name, password)
			ta.register(bob, "bob", "bob-password")
			if r := ta.get(c, "/count"); r.status != http.StatusOK {
				t.Fatalf("GET /count before the edit: %d", r.status)
			}

			edit()
			r := ta.get(c, "/redis")
			if r.status != http.StatusOK || !strings.Contains(r.body, key) || !strings.Contains(r.body, "TYPE: "+tc.kind) {
				t.Errorf("GET /redis: %d, want 200 showing %s as a %s:\n%s", r.status, key, tc.kind, r.body)
			}
			r = ta.get(c, "/count")
			if r.status != http.StatusOK || countShown(t, r.body) != "2" {
				t.Fatalf("GET /count after the edit: %d, want 200 counting 2:\n%s", r.status, r.body)
			}
			if stored := ta.redis.MustDo("GET", sessions.Key(ta.token(c))); !containsViews(stored, 2) {
				t.Errorf("the session holds %s, want 2 views: one per count", stored)
			}
			// Started again, with the session that counted listed again.
			if raw := ta.redis.MustDo("HGET", key, sessions.ID(ta.token(c))); !strings.Contains(raw, ta.token(c)) {
				t.Errorf("%s holds %q for the session that counted, want its entry written again", key, raw)
			}
			if logs := ta.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, key) {
				t.Errorf("no WARN naming %s:\n%s", key, logs)
			}

			edit()
			if r := ta.get(c, "/sessions"); r.status != http.StatusOK {
				t.Errorf("GET /sessions after the edit: %d, want 200", r.status)
			}

			edit()
			c3 := ta.client()
			ta.login(c3, name, password)
			if r := ta.get(c3, "/sessions"); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="session-row"`) {
				t.Errorf("GET /sessions after a login: %d, want 200 listing this session:\n%s", r.status, r.body)
			}

			edit()
			if r := ta.post(c3, "/logout", nil); r.status != http.StatusSeeOther {
				t.Errorf("POST /logout after the edit: %d, want 303:\n%s", r.status, r.body)
			}
			if r := ta.get(c3, "/profile"); r.status == http.StatusOK {
				t.Error("GET /profile after the logout: 200, still logged in")
			}

			edit()
			r = ta.post(c, "/password", url.Values{"current": {password}, "new": {"indexed-new-password"}})
			if r.status != http.StatusSeeOther {
				t.Errorf("POST /password after the edit: %d, want 303:\n%s", r.status, r.body)
			}
			if r := ta.get(c, "/profile"); r.status != http.StatusOK {
				t.Errorf("GET /profile after the password change: %d, want 200", r.status)
			}
			// The index lost c2's entry: the new credential generation ends it.
			if r := ta.get(c2, "/profile"); r.status == http.StatusOK {
				t.Error("the other browser is still logged in after the password change")
			}
			if r := ta.get(bob, "/count"); r.status != http.StatusOK {
				t.Errorf("another user's GET /count: %d", r.status)
			}
			ta.noErrorLogged(t)
		})
	}
}

// One entry of a user's index that is not JSON (HSET over it with
// redis-cli) does not fail every count of its browser, each one still
// counted: the entry is written again, the count counts once.
func TestAnUndecodableIndexEntryIsWrittenAgain(t *testing.T) {
	ta := newTestApp(t)
	const name = "garbled"
	c := ta.client()
	ta.register(c, name, "garbled-password")
	if r := ta.get(c, "/count"); r.status != http.StatusOK {
		t.Fatalf("GET /count before the edit: %d", r.status)
	}
	id := sessions.ID(ta.token(c))
	ta.redis.MustDo("HSET", sessions.IndexKey(name), id, "not json")
	for _, want := range []string{"2", "3"} {
		r := ta.get(c, "/count")
		if r.status != http.StatusOK || countShown(t, r.body) != want {
			t.Fatalf("GET /count after the edit: %d, want 200 counting %s:\n%s", r.status, want, r.body)
		}
	}
	if stored := ta.redis.MustDo("GET", sessions.Key(ta.token(c))); !containsViews(stored, 3) {
		t.Errorf("the session holds %s, want 3 views: one per count", stored)
	}
	var e struct{ Token string }
	if raw := ta.redis.MustDo("HGET", sessions.IndexKey(name), id); json.Unmarshal([]byte(raw), &e) != nil || e.Token != ta.token(c) {
		t.Errorf("the entry holds %q, want it written again with the session's token", raw)
	}
	if r := ta.get(c, "/sessions"); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="session-row"`) {
		t.Errorf("GET /sessions: %d, want 200 listing the session", r.status)
	}
	if logs := ta.logs.String(); !strings.Contains(logs, "level=WARN") || strings.Contains(logs, "level=ERROR") {
		t.Errorf("want a WARN and no ERROR:\n%s", logs)
	}
}

// A session missing from its user's index (the index deleted by hand, or
// started again) is listed again at its next count, so it can be seen and
// revoked on the sessions page.
func TestACountListsAgainASessionMissingFromItsIndex(t *testing.T) {
	ta := newTestApp(t)
	const name = "unlisted"
	c := ta.client()
	ta.register(c, name, "unlisted-password")
	ta.redis.MustDo("DEL", sessions.IndexKey(name))
	if r := ta.get(c, "/count"); r.status != http.StatusOK || countShown(t, r.body) != "1" {
		t.Fatalf("GET /count: %d, want 200 counting 1", r.status)
	}
	if raw := ta.redis.MustDo("HGET", sessions.IndexKey(name), sessions.ID(ta.token(c))); !strings.Contains(raw, ta.token(c)) {
		t.Errorf("the index holds %q for the session, want its entry written again", raw)
	}
	if r := ta.get(c, "/sessions"); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="session-row"`) {
		t.Errorf("GET /sessions: %d, want 200 listing the session", r.status)
	}
}

// The user's revoked-ids key of another type (SET over the hash) does not
// fail "log out everywhere else" and a password change after they took the
// session, with a page saying nothing was changed and a minute of 409s: the
// key is the app's own, so it is deleted and the change goes through.
func TestARevokedKeyOfAnotherTypeIsReset(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		form       url.Values
	}{
		{"log out everywhere else", "/sessions/revoke-others", url.Values{}},
		{"change the password", "/password", url.Values{"current": {"rev-password"}, "new": {"rev-new-password"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestApp(t)
			const name = "rev"
			c, other := ta.client(), ta.client()
			ta.register(c, name, "rev-password")
			ta.login(other, name, "rev-password")
			key := sessions.RevokedKey(name)
			ta.redis.MustDo("SET", key, "not a hash")

			if r := ta.post(c, tc.path, tc.form); r.status != http.StatusSeeOther {
				t.Fatalf("POST %s: %d, want 303:\n%s", tc.path, r.status, r.body)
			}
			if r := ta.get(c, "/sessions"); r.status != http.StatusOK {
				t.Errorf("GET /sessions afterwards: %d, want 200:\n%s", r.status, r.body)
			}
			if r := ta.get(other, "/profile"); r.status == http.StatusOK {
				t.Error("the other browser is still logged in")
			}
			if got := ta.redis.MustDo("TYPE", key); got != "hash" && got != "none" {
				t.Errorf("%s is a %s, want a hash again", key, got)
			}
			if logs := ta.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, key) ||
				strings.Contains(logs, "level=ERROR") {
				t.Errorf("want a WARN naming %s and no ERROR:\n%s", key, logs)
			}
		})
	}
}

// A page that refreshes "last seen" does not fail on such an entry either;
// it leaves the entry for the count to write again.
func TestAnUndecodableIndexEntryDoesNotFailTheTouch(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.TouchEvery = 0 })
	const name = "touched"
	c := ta.client()
	ta.register(c, name, "touched-password")
	ta.redis.MustDo("HSET", sessions.IndexKey(name), sessions.ID(ta.token(c)), "not json")
	if r := ta.get(c, "/profile"); r.status != http.StatusOK {
		t.Errorf("GET /profile after the edit: %d, want 200", r.status)
	}
	ta.noErrorLogged(t)
}

// The Redis panel shows the user's index when a field holds what is no entry
// (edited by hand): that field is named and its value not shown, the others
// as usual. It left the whole key out.
func TestThePanelShowsAnIndexWithAFieldEditedByHand(t *testing.T) {
	ta := newTestApp(t)
	const name = "fiona"
	c, other := ta.client(), ta.client()
	ta.register(c, name, "fiona-password")
	ta.login(other, name, "fiona-password")
	otherID := sessions.ID(ta.token(other))
	for _, edit := range []string{"not-json", "[1,2]", `"` + ta.token(other) + `"`} {
		ta.redis.MustDo("HSET", sessions.IndexKey(name), otherID, edit)
		body := ta.get(c, "/redis", "HX-Request", "true", "HX-Target", views.IDRedisPanel).body
		if !strings.Contains(body, sessions.IndexKey(name)) || !strings.Contains(body, otherID) {
			t.Errorf("field edited to %s: the panel leaves out %s or the field", edit, sessions.IndexKey(name))
		}
		if strings.Contains(body, ta.token(other)) || strings.Contains(body, ta.token(c)) {
			t.Errorf("field edited to %s: the panel shows a whole token", edit)
		}
	}
}

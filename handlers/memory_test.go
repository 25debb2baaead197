package handlers

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/sessionstack"
)

// With -store memory there is no shared index of sessions, and every page
// still works: the sessions page says why it lists nothing, the actions
// that walk the list do what is left to do, and the panel shows no index.
func TestMemoryModeWorksWithoutAnIndex(t *testing.T) {
	rs := redistest.Start(t)
	ta := wireTestApp(t, rs, testConfig(rs, sessionstack.Memory)).serve()
	c := ta.client()
	ta.register(c, "mia", "mia-password")

	t.Run("no page says a session goes through Redis, and no request asks Redis for one", func(t *testing.T) {
		for _, path := range []string{"/", "/count", "/redis", "/profile"} {
			body := ta.get(c, path).body
			for _, untrue := range []string{"Redis pub/sub", "on either instance", "the count goes through Redis",
				"UNSUBSCRIBE", "such as the live stream's"} {
				if strings.Contains(body, untrue) {
					t.Errorf("GET %s in memory mode says %q", path, untrue)
				}
			}
			for _, line := range traceLines(body) {
				if strings.Contains(line, "sess:") {
					t.Errorf("GET %s in memory mode sent Redis a command about a session key: %s", path, line)
				}
			}
		}
	})
	t.Run("every page warns what memory mode loses", func(t *testing.T) {
		if r := ta.get(c, "/profile"); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="banner"`) {
			t.Errorf("GET /profile: %d, banner shown: %v", r.status, strings.Contains(r.body, `data-testid="banner"`))
		}
	})
	t.Run("the sessions page says there is no list", func(t *testing.T) {
		r := ta.get(c, "/sessions")
		if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="sessions-unavailable"`) {
			t.Errorf("GET /sessions: %d, want 200 saying the list is unavailable\n%s", r.status, r.body)
		}
	})
	t.Run("a revoke shows the page again", func(t *testing.T) {
		r := ta.post(c, "/sessions/0123456789abcdef/revoke", nil)
		if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="sessions-unavailable"`) {
			t.Errorf("POST revoke: %d, want the sessions page", r.status)
		}
	})
	t.Run("log out everywhere else keeps this session", func(t *testing.T) {
		if r := ta.post(c, "/sessions/revoke-others", nil); r.status != http.StatusSeeOther {
			t.Errorf("POST /sessions/revoke-others: %d, want 303", r.status)
		}
		if r := ta.get(c, "/profile"); r.status != http.StatusOK {
			t.Errorf("GET /profile afterwards: %d, want 200", r.status)
		}
	})
	t.Run("the Redis panel shows no index, even one left by a Redis-mode run", func(t *testing.T) {
		rdb := ta.redis.Client(t)
		if err := rdb.Do(t.Context(), rdb.B().Hset().Key(sessions.IndexKey("mia")).FieldValue().FieldValue("x", `{"token":"y"}`).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		r := ta.get(c, "/redis")
		if r.status != http.StatusOK || strings.Contains(r.body, sessions.IndexKey("mia")) {
			t.Errorf("GET /redis: %d, shows %s: %v", r.status, sessions.IndexKey("mia"), strings.Contains(r.body, sessions.IndexKey("mia")))
		}
	})
	t.Run("a panel that read nothing from Redis names no moment it read it", func(t *testing.T) {
		r := ta.get(ta.client(), "/redis", "HX-Request", "true", "HX-Target", "redis-panel")
		if r.status != http.StatusOK || strings.Contains(r.body, "Read from Redis at") || !strings.Contains(r.body, "sent nothing to Redis") {
			t.Errorf("the panel of a visitor in memory mode: %d\n%s", r.status, r.body)
		}
		if r := ta.get(c, "/redis", "HX-Request", "true", "HX-Target", "redis-panel"); !strings.Contains(r.body, "Read from Redis at") {
			t.Errorf("the panel of a logged-in user (the account is in Redis) names no moment:\n%s", r.body)
		}
	})
	t.Run("the Redis panel claims no session is in Redis", func(t *testing.T) {
		r := ta.get(c, "/redis")
		if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="redis-store"`) || strings.Contains(r.body, "GET sess:") {
			t.Errorf("GET /redis: %d, says sessions are not in Redis: %v, shows how to GET a session key: %v",
				r.status, strings.Contains(r.body, `data-testid="redis-store"`), strings.Contains(r.body, "GET sess:"))
		}
	})
	t.Run("logout ends the session", func(t *testing.T) {
		if r := ta.post(c, "/logout", nil); r.status != http.StatusSeeOther {
			t.Errorf("POST /logout: %d, want 303", r.status)
		}
		if r := ta.get(c, "/profile"); r.status != http.StatusUnauthorized {
			t.Errorf("GET /profile after logout: %d, want 401", r.status)
		}
	})
}

// With -store memory, a cookie whose session this process stored and no
// longer holds is explained without naming a cause memory mode cannot have:
// this process's memory does not lose its data while it runs (a session
// lost with an earlier process gets the lost-session banner instead).
func TestMemoryModeEndedSessionNamesOnlyItsCauses(t *testing.T) {
	rs := redistest.Start(t)
	cfg := testConfig(rs, sessionstack.Memory)
	cfg.Lifetime = time.Second
	ta := wireTestApp(t, rs, cfg).serve()
	c := ta.client()
	ta.register(c, "ned", "ned-password")
	time.Sleep(1100 * time.Millisecond) // the session's absolute end

	body := ta.get(c, "/").body
	if !strings.Contains(body, `data-testid="ended-session"`) {
		t.Fatalf("the ended session is not explained (the test proves nothing):\n%s", body)
	}
	if strings.Contains(body, "lost its data") || strings.Contains(body, "Redis no longer holds") {
		t.Errorf("memory mode's explanation names Redis or lost data:\n%s", body)
	}
}

// In memory mode too the ended session is explained once. A session this
// process never stored (lost with an earlier process, or living on another
// instance, which shares the cookie on another port of the same host) is
// explained but its cookie is kept: it may be live elsewhere.
func TestMemoryModeExplainsOnceAndKeepsAnotherInstancesCookie(t *testing.T) {
	rs := redistest.Start(t)
	cfg := testConfig(rs, sessionstack.Memory)
	cfg.Lifetime = time.Second
	ta := wireTestApp(t, rs, cfg).serve()
	c := ta.client()
	ta.register(c, "ona", "ona-password")
	time.Sleep(1100 * time.Millisecond) // the session's absolute end
	if body := ta.get(c, "/").body; !strings.Contains(body, `data-testid="ended-session"`) {
		t.Fatal("the ended session is not explained (the test proves nothing)")
	}
	if r := ta.get(c, "/"); strings.Contains(r.body, `data-testid="ended-session"`) || ta.token(c) != "" {
		t.Errorf("the next page explains again (%v), or the cookie is still there (%v)",
			strings.Contains(r.body, `data-testid="ended-session"`), ta.token(c) != "")
	}

	other := wireTestApp(t, rs, testConfig(rs, sessionstack.Memory)).serve()
	theirs := other.client()
	other.anonymousSession(theirs)
	r := ta.get(ta.clientWithToken(other.token(theirs)), "/")
	if !strings.Contains(r.body, `data-testid="lost-session"`) || setCookieOf(r, "session") != "" {
		t.Errorf("another instance's session: lost-session shown %v, Set-Cookie %q; want shown and no cookie change",
			strings.Contains(r.body, `data-testid="lost-session"`), setCookieOf(r, "session"))
	}
}

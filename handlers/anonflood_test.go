package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// Anyone can start a session (GET /count without a cookie writes a key), so
// new anonymous sessions are limited per client address, and one that is
// never used again is short-lived: a flood costs little and ends by itself.
func TestAnonymousFlood(t *testing.T) {
	limit := throttle.Limit{Max: 3, Window: time.Hour}
	ta := newTestApp(t, behindProxy)
	p := throttle.DefaultPolicy
	p.Anonymous = limit
	ta.app.Throttle = throttle.New(newRedisClient(t, ta.redis), p)
	countFrom := func(c *http.Client, addr string) response {
		t.Helper()
		return ta.get(c, "/count", "X-Forwarded-For", addr)
	}
	sessionKeys := func() int {
		t.Helper()
		return strings.Count(ta.redis.MustDo("KEYS", sessions.Prefix+"*"), sessions.Prefix)
	}

	t.Run("past the limit: 429 with Retry-After, and no key created", func(t *testing.T) {
		for i := range limit.Max {
			wantStatus(t, "new session #"+strconv.Itoa(i+1), countFrom(ta.client(), "192.0.2.60"), http.StatusOK)
		}
		before := sessionKeys()
		r := countFrom(ta.client(), "192.0.2.60")
		wantStatus(t, "one more", r, http.StatusTooManyRequests)
		if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 || secs > int(limit.Window.Seconds()) {
			t.Errorf("Retry-After %q, want 1..%d", r.header.Get("Retry-After"), int(limit.Window.Seconds()))
		}
		if !strings.Contains(r.body, "Too many new sessions") {
			t.Errorf("no clear message\n%s", r.body)
		}
		if r.header.Get("Set-Cookie") != "" {
			t.Errorf("a refused session set a cookie: %q", r.header.Get("Set-Cookie"))
		}
		if after := sessionKeys(); after != before {
			t.Errorf("session keys %d -> %d: a refused session was stored", before, after)
		}
	})
	t.Run("a session the client already has is never refused", func(t *testing.T) {
		c := ta.client()
		wantStatus(t, "new, from elsewhere", countFrom(c, "198.51.100.60"), http.StatusOK)
		for range 3 {
			wantStatus(t, "the same session from the busy address", countFrom(c, "192.0.2.60"), http.StatusOK)
		}
	})
	t.Run("logging in from the busy address still works", func(t *testing.T) {
		ta.register(ta.client(), "lena", "lena-password")
		r := ta.post(ta.client(), "/login", url.Values{"username": {"lena"}, "password": {"lena-password"}}, "X-Forwarded-For", "192.0.2.60")
		wantStatus(t, "login", r, http.StatusSeeOther)
	})
	t.Run("a new anonymous session lives 10 minutes unless used again, then the idle timeout", func(t *testing.T) {
		c := ta.client()
		countFrom(c, "203.0.113.60")
		key := sessions.Key(ta.token(c))
		ttl := func() time.Duration {
			ms, _ := strconv.Atoi(ta.redis.MustDo("PTTL", key))
			return time.Duration(ms) * time.Millisecond
		}
		if got := ttl(); got <= 0 || got > sessions.FreshFor {
			t.Errorf("new anonymous session: TTL %v, want at most %v", got, sessions.FreshFor)
		}
		countFrom(c, "203.0.113.60")
		if got := ttl(); got <= sessions.FreshFor || got > ta.app.Idle {
			t.Errorf("after it was used again: TTL %v, want the %v idle timeout", got, ta.app.Idle)
		}
	})
}

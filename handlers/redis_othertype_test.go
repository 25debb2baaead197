package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/sessions"
)

// The Redis page shows a key of a type the app does not write (its TYPE),
// where it answered 500 and could show nothing, not even the key.
func TestTheRedisPageShowsAKeyOfAnotherType(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	if r := ta.get(c, "/count"); r.status != http.StatusOK {
		t.Fatalf("GET /count: %d", r.status)
	}
	key := sessions.Key(ta.token(c))
	ta.redis.MustDo("DEL", key)
	ta.redis.MustDo("HSET", key, "views", "1")
	r := ta.get(c, "/redis")
	if r.status != http.StatusOK || !strings.Contains(r.body, "TYPE: hash") {
		t.Errorf("GET /redis with the session key a hash: %d, want 200 saying it is a hash:\n%s\n%s", r.status, r.body, ta.logs.String())
	}
}

// The same for a logged-in user's session index of another type.
func TestTheRedisPageShowsAnIndexOfAnotherType(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "shown", "shown-password")
	key := sessions.IndexKey("shown")
	ta.redis.MustDo("SET", key, "not an index")
	r := ta.get(c, "/redis")
	if r.status != http.StatusOK || !strings.Contains(r.body, key) || !strings.Contains(r.body, "TYPE: string") {
		t.Errorf("GET /redis with %s a string: %d, want 200 saying it is a string:\n%s", key, r.status, r.body)
	}
	if got := ta.redis.MustDo("TYPE", key); got != "string" {
		t.Errorf("%s is a %s after the page, want it left a string", key, got)
	}
}

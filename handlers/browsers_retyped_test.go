package handlers

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/sessionlab/sessionlab/internal/sessions"
)

// An address's browsers keys holding another type of value (SET over the
// hash or the sorted set with redis-cli) do not fail every count and every
// lab page from that address, for every student behind it, with the count
// written before the error page said nothing was changed: the list starts
// again, each count counts once and says so.
func TestAnAddressBrowsersKeyOfAnotherTypeStartsTheListAgain(t *testing.T) {
	const addr = "192.0.2.88"
	for _, key := range []string{sessions.BrowsersKey(addr), sessions.BrowsersSeenKey(addr)} {
		t.Run(key, func(t *testing.T) {
			ta := newTestApp(t, behindProxy)
			get := func(c *http.Client, path string) response {
				t.Helper()
				return ta.get(c, path, "X-Forwarded-For", addr)
			}
			student, other := ta.client(), ta.client()
			ta.register(student, "retyped", "retyped-password")
			for _, c := range []*http.Client{student, other} {
				if r := get(c, "/count"); r.status != http.StatusOK {
					t.Fatalf("GET /count before the edit: %d", r.status)
				}
			}
			ta.redis.MustDo("SET", key, "not a list")

			for i, c := range []*http.Client{student, other, student} {
				want := "2"
				if i == 2 {
					want = "3"
				}
				r := get(c, "/count")
				if r.status != http.StatusOK {
					t.Fatalf("GET /count %d after the edit: %d, want 200:\n%s", i, r.status, r.body)
				}
				if got := countShown(t, r.body); got != want {
					t.Errorf("GET /count %d after the edit shows %s, want %s", i, got, want)
				}
			}
			stored := ta.redis.MustDo("GET", sessions.Key(ta.token(student)))
			if !containsViews(stored, 3) {
				t.Errorf("the session holds %s, want 3 views: one per count", stored)
			}
			if got := ta.redis.MustDo("TYPE", sessions.BrowsersKey(addr)); got != "hash" {
				t.Errorf("%s is a %s after the counts, want a hash again", sessions.BrowsersKey(addr), got)
			}
			if got := ta.redis.MustDo("TYPE", sessions.BrowsersSeenKey(addr)); got != "zset" {
				t.Errorf("%s is a %s after the counts, want a zset again", sessions.BrowsersSeenKey(addr), got)
			}
			if ttl, _ := strconv.Atoi(ta.redis.MustDo("PTTL", key)); ttl <= 0 {
				t.Errorf("%s has no expiry after the counts: PTTL %d", key, ttl)
			}
			if r := get(ta.client(), "/count"); r.status != http.StatusOK {
				t.Errorf("a new browser's first count: %d", r.status)
			}

			ta.redis.MustDo("SET", key, "not a list")
			if r := get(student, "/lab"); r.status != http.StatusOK {
				t.Errorf("GET /lab after the edit: %d, want 200", r.status)
			}
		})
	}
}

var storedViewsRe = regexp.MustCompile(`"views":(\d+)`)

// containsViews reports whether a stored session's JSON holds views n.
func containsViews(stored string, n int) bool {
	m := storedViewsRe.FindStringSubmatch(stored)
	return m != nil && m[1] == strconv.Itoa(n)
}

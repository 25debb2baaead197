package handlers

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// Behind nginx (proxy_next_upstream error), a count whose instance was
// killed after the count script ran is sent again, with the same
// X-Request-Id, to another instance. That one answers with the count the
// first one made and adds nothing: the client, who never saw the first
// answer, clicked once. Only a trusted proxy's id is one request's: a
// client's own header is ignored, so each of its requests counts.
func TestACountRetriedByTheProxyOnAnotherInstanceCountsOnce(t *testing.T) {
	trusted := func(a *App) { a.TrustedProxies, _ = ParseTrustedProxies("127.0.0.1/32") }
	a := newTestApp(t, trusted)
	b := newTestAppWith(t, a.redis, func(c *Config) { c.Instance = "b" }, trusted, func(app *App) { app.ProcessID = "0b0b0b" })
	direct := newTestAppWith(t, a.redis, func(c *Config) { c.Instance = "c" }, func(app *App) { app.ProcessID = "0c0c0c" })

	for i, tc := range []struct {
		name     string
		loggedIn bool
		headers  []string
	}{
		{"anonymous, the page", false, countHeaders[0]},
		{"anonymous, the htmx counter", false, countHeaders[1]},
		{"logged in, the page", true, countHeaders[0]},
		{"logged in, the htmx counter", true, countHeaders[1]},
	} {
		headers := tc.headers
		t.Run(tc.name, func(t *testing.T) {
			c := a.client()
			if tc.loggedIn {
				a.register(c, fmt.Sprintf("retried%d", i), "retried-password")
			}
			a.get(c, "/count") // the session is stored
			token := a.token(c)
			before := storedViews(t, a.redis, token)
			count := func(ta *testApp, id string) int {
				t.Helper()
				r := ta.get(c, "/count", append([]string{"X-Request-Id", id}, headers...)...)
				if r.status != 200 {
					t.Fatalf("GET /count (request %s): status %d\n%s", id, r.status, r.body)
				}
				// A count's answer either way: the counter, and this browser's
				// row in the list of browsers with the same count.
				n, row := hit{body: r.body}.views(), thisRowViews.FindStringSubmatch(r.body)
				if n < 0 || row == nil || row[1] != strconv.Itoa(n) {
					t.Fatalf("request %s: counter %d, this browser's row %q; want a count's answer\n%s", id, n, row, r.body)
				}
				return n
			}

			first := count(a, "nginx-1f2e3d")
			retried := count(b, "nginx-1f2e3d")
			if first != before+1 || retried != first {
				t.Errorf("request nginx-1f2e3d on a, then again on b: answered %d and %d, want %d both", first, retried, before+1)
			}
			if got := storedViews(t, a.redis, token); got != before+1 {
				t.Errorf("after one request sent to two instances, Redis holds %d views, want %d", got, before+1)
			}

			before = storedViews(t, a.redis, token)
			if next := count(b, "nginx-4c5b6a"); next != before+1 {
				t.Errorf("another request id: answered %d, want %d (counted)", next, before+1)
			}

			// Not from a trusted proxy: the header is the client's own.
			for i := range 2 {
				before = storedViews(t, a.redis, token)
				if got := count(direct, "nginx-4c5b6a"); got != before+1 {
					t.Errorf("the same id from a client that is no trusted proxy, time %d: answered %d, want %d (counted)", i+1, got, before+1)
				}
			}
			a.noErrorLogged(t)
			b.noErrorLogged(t)
		})
	}
}

// thisRowViews is this browser's count in the list of browsers.
var thisRowViews = regexp.MustCompile(`id="` + views.IDThisViews + `"[^>]*>(\d+)<`)

// The session's counted: key is one of its keys in Redis, so the Redis page
// shows it when the page comes through a trusted proxy, the only way it is
// ever written; a page not served through one does not ask for it.
func TestTheRedisPageShowsTheCountedKeyThroughAProxy(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.TrustedProxies, _ = ParseTrustedProxies("127.0.0.1/32") })
	direct := newTestAppOn(t, ta.redis)
	c := ta.client()
	ta.get(c, "/count")
	ta.get(c, "/count", "X-Request-Id", "nginx-9a8b7c")
	key := sessions.CountedKey(ta.token(c))

	page := ta.get(c, "/redis", "X-Request-Id", "nginx-0d1e2f").body
	if !strings.Contains(page, key) || !strings.Contains(page, "nginx-9a8b7c 2") {
		t.Errorf("through the proxy, the Redis page does not show %s holding \"nginx-9a8b7c 2\":\n%s", key, page)
	}
	if page := direct.get(c, "/redis").body; strings.Contains(page, "counted:") {
		t.Errorf("a Redis page not served through a proxy names a counted: key:\n%s", page)
	}
}

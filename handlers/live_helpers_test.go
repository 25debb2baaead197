package handlers

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// newLiveApp serves an app instance named instance on rs.
func newLiveApp(t *testing.T, rs *redistest.Server, instance string, options ...func(*App)) *testApp {
	t.Helper()
	return newTestAppWith(t, rs, func(c *Config) { c.Instance = instance }, options...)
}

func newRedisClient(t *testing.T, rs *redistest.Server) rueidis.Client {
	t.Helper()
	return rs.Client(t)
}

// browser is a client that says it is a given browser.
func browser(t *testing.T, userAgent string) *http.Client {
	t.Helper()
	c := apptest.Client(t)
	c.Transport = uaTransport(userAgent)
	return c
}

type uaTransport string

func (u uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", string(u))
	return http.DefaultTransport.RoundTrip(r)
}

const (
	firefoxLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	safariIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
	chromeWin    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// login logs c in through the form on ta.
func (ta *testApp) login(c *http.Client, name, password string) {
	ta.t.Helper()
	r := ta.post(c, "/login", url.Values{"username": {name}, "password": {password}})
	if r.status != http.StatusSeeOther {
		ta.t.Fatalf("login %s: status %d, want 303\n%s", name, r.status, r.body)
	}
}

// row is one session row of the sessions page.
type row struct {
	id, device, ip, instance string
	current                  bool
}

var (
	rowRe      = regexp.MustCompile(`(?s)<tr data-testid="session-row" data-session-id="([0-9a-f]+)"( data-current="true")?>(.*?)</tr>`)
	cellRe     = regexp.MustCompile(`(?s)data-testid="session-(device|ip|instance)">(?:<code>)?([^<]*)`)
	revokeBtns = regexp.MustCompile(`data-testid="revoke"`)
)

// sessionRows reads the session rows of a sessions page.
func sessionRows(t *testing.T, body string) []row {
	t.Helper()
	if !strings.Contains(body, `data-testid="session-list"`) {
		t.Fatalf("no session list in page:\n%s", body)
	}
	var rows []row
	for _, m := range rowRe.FindAllStringSubmatch(body, -1) {
		r := row{id: m[1], current: m[2] != ""}
		for _, c := range cellRe.FindAllStringSubmatch(m[3], -1) {
			switch c[1] {
			case "device":
				r.device = c[2]
			case "ip":
				r.ip = c[2]
			case "instance":
				r.instance = c[2]
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// exists reports whether key is in Redis.
func exists(t *testing.T, rdb rueidis.Client, key string) bool {
	t.Helper()
	n, err := rdb.Do(context.Background(), rdb.B().Exists().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatalf("EXISTS %s: %v", key, err)
	}
	return n == 1
}

// killSubscription drops the live hub's subscription connection, as a Redis
// hiccup would, once the hub holds one (untilSubscribed).
func killSubscription(t *testing.T, rs *redistest.Server) {
	t.Helper()
	untilSubscribed(t, rs)
	rs.MustDo("CLIENT", "KILL", "TYPE", "pubsub")
}

// untilSubscribed waits until a live hub has subscribed in Redis: a stream
// opened while its hub's first connection was still opening is subscribed
// by that connection later, so a fault made before then (a kill, a held
// reply) hits nothing or the wrong connection, and a test waits for news
// that came already or never will.
func untilSubscribed(t *testing.T, rs *redistest.Server) {
	t.Helper()
	waitFor(t, "the live hub to subscribe", func() bool { return rs.MustDo("PUBSUB", "CHANNELS", "live:*") != "" })
}

package handlers

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

var traceRe = regexp.MustCompile(`(?s)<li data-testid="trace-command"[^>]*><code>([^<]*)</code>(?: <small>\(the ([^<]*) script\)</small>)?( <small>\(opening the connection this request needed\)</small>)?(?: → (.*?), [0-9.]+ ms)?`)

// traceLines reads the commands the Redis panel's trace says the request
// sent (not a script's own), in short: the command, a script's name, the
// first key, the reply ("GET sess:abcdef… → 264 B", "EVALSHA count
// sess:abcdef… → [3, 90 B]", "MULTI" when the reply came with a later one).
// A script's first run in a fresh Redis is EVALSHA → NOSCRIPT, then EVAL
// (rueidis loads it so): those are left out, and EVAL reads as EVALSHA. So
// are a new connection's handshake and the pool's ROLE check (of a new
// connection, or one last checked 3 s ago or more): which request sends
// them is chance, and a slow run makes it so (TestTraceIsWhatMonitorPrints
// checks them).
func traceLines(body string) []string {
	var out []string
	for _, m := range traceRe.FindAllStringSubmatch(body, -1) {
		if m[4] == "error NOSCRIPT" || m[3] != "" {
			continue
		}
		args := redistest.SplitArgs(html.UnescapeString(m[1]))
		line := args[0]
		if line == "ROLE" {
			continue
		}
		if line == "EVAL" {
			line = "EVALSHA"
		}
		switch {
		case m[2] != "":
			line += " " + m[2]
			if len(args) > 3 && args[2] != "0" {
				line += " " + args[3]
			}
		case len(args) > 1:
			line += " " + args[1]
		}
		if m[4] != "" {
			line += " → " + m[4]
		}
		out = append(out, line)
	}
	return out
}

func TestRedisPanelShowsWhatTheRequestSent(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()

	t.Run("a new session: the browsers script (with the new-session limit) writes it with its short expiry, in one round trip; no load GET", func(t *testing.T) {
		start := time.Now()
		body := ta.get(c, "/count").body
		key := sessions.CutKey(sessions.Key(ta.token(c)))
		got := strings.Join(traceLines(body), "\n")
		if !regexp.MustCompile(`^EVALSHA note new browser browsers:loopback → \[0, [0-9]+ B\]$`).MatchString(got) {
			t.Errorf("trace of the first count:\n%s", got)
		}
		set := regexp.MustCompile(`inside Redis:</small> <code>"SET" "` + regexp.QuoteMeta(key) + `" "\{\\"deadline\\":[^<]*" "PXAT" "(\d+)"</code>`).FindStringSubmatch(body)
		if set == nil {
			t.Fatalf("the script's trace does not write the session with PXAT:\n%s", body)
		}
		// sessions.FreshFor from now: the key lives briefly until it is used again.
		ms, _ := strconv.ParseInt(set[1], 10, 64)
		if at := time.UnixMilli(ms); at.Before(start.Add(sessions.FreshFor-time.Second)) || at.After(time.Now().Add(sessions.FreshFor)) {
			t.Errorf("the session's key expires at %s, want %s from now", at, sessions.FreshFor)
		}
	})

	t.Run("a stored session: the GET of its key (first, the pool's check of its new connection), then the count script and its result", func(t *testing.T) {
		// Its first reuse also touches it: a new session's key lives
		// only sessions.FreshFor until it is used again.
		body := ta.get(c, "/count").body
		if lines := traceLines(body); len(lines) != 3 || !strings.HasPrefix(lines[1], "EVALSHA touch ") {
			t.Errorf("trace of the first reuse: %q, want GET, touch, count", lines)
		}
		if !regexp.MustCompile(`<code>"ROLE"</code> → \[master, 0, 0 items\], `).MatchString(body) {
			i := strings.Index(body, `redis-trace-list`)
			t.Errorf("the trace of the session pool's first read lacks its ROLE check of the new connection: %s", body[i:min(len(body), i+1500)])
		}
		body = ta.get(c, "/count").body
		key := sessions.CutKey(sessions.Key(ta.token(c)))
		lines := traceLines(body)
		if len(lines) != 2 || !regexp.MustCompile(`^GET `+regexp.QuoteMeta(key)+` → \d+ B$`).MatchString(lines[0]) ||
			!regexp.MustCompile(`^EVALSHA count `+regexp.QuoteMeta(key)+` → \[3, \d+ B\]$`).MatchString(lines[1]) {
			t.Errorf("trace of the second count: %q", lines)
		}
		if strings.Contains(body, ta.token(c)) {
			t.Error("the page holds the full token")
		}
	})

	t.Run("an htmx count brings its own trace, out of band", func(t *testing.T) {
		r := ta.get(c, "/count", "HX-Request", "true", "HX-Target", "view-count")
		if !strings.Contains(r.body, `id="redis-trace" class="redis-trace" aria-label="What this request did in Redis" hx-swap-oob="true"`) {
			t.Fatalf("no out-of-band trace in the htmx count:\n%s", r.body)
		}
		if lines := traceLines(r.body); len(lines) != 2 || !strings.HasPrefix(lines[0], "GET sess:") || !strings.HasPrefix(lines[1], "EVALSHA count") {
			t.Errorf("trace of the htmx count: %q", lines)
		}
	})

	t.Run("a read is its one GET", func(t *testing.T) {
		if lines := traceLines(ta.get(c, "/").body); len(lines) != 1 || !strings.HasPrefix(lines[0], "GET sess:") {
			t.Errorf("trace of the home page: %q", lines)
		}
	})

	t.Run("the panel names this Redis and its redis-cli examples point at it", func(t *testing.T) {
		body := ta.get(c, "/redis", "HX-Request", "true", "HX-Target", "redis-panel").body
		cli := "redis-cli -u redis://" + ta.redis.Addr() + "/0 GET sess:&lt;token&gt;"
		if !strings.Contains(body, cli) {
			t.Errorf("panel has no %q:\n%s", cli, body)
		}
	})
}

// The panel's redis-cli line reaches the Redis the app uses, as the app
// does: its user (asking for the password, never showing it), its TLS
// files, and with Sentinel the master, never a sentinel.
func TestDescribeRedisAsTheAppReachesIt(t *testing.T) {
	master := "10.0.0.7:6379"
	for _, tc := range []struct {
		cfg        redisconn.Config
		where, cli string
	}{
		{redisconn.Config{URL: "redis://127.0.0.1:6391/0"}, "127.0.0.1:6391, database 0", "redis-cli -u redis://127.0.0.1:6391/0"},
		{redisconn.Config{URL: "redis://:s3cret@db.example:6380/3"}, "db.example:6380, database 3", "redis-cli -u redis://db.example:6380/3 --askpass"},
		{redisconn.Config{URL: "rediss://bob:s3cret@db.example:6380/2"}, "db.example:6380, database 2", "redis-cli --tls -u rediss://db.example:6380/2 --user bob --askpass"},
		{redisconn.Config{URL: "rediss://bob:s3cret@db.example:6380/2", CA: "/etc/ca.pem", Cert: "/etc/c.pem", Key: "/etc/k.pem"},
			"db.example:6380, database 2", "redis-cli --tls --cacert /etc/ca.pem --cert /etc/c.pem --key /etc/k.pem -u rediss://db.example:6380/2 --user bob --askpass"},
		{redisconn.Config{URL: "unix:///run/redis.sock?db=1"}, "/run/redis.sock, database 1", "redis-cli -s /run/redis.sock -n 1"},
		{redisconn.Config{URL: "redis://app:s3cret@s1:26379/0?master_set=mymaster&addr=s2:26379"},
			master + " (the master of mymaster, as Sentinel names it now), database 0", "redis-cli -u redis://" + master + "/0 --user app --askpass"},
	} {
		t.Run(tc.cfg.URL, func(t *testing.T) {
			describe, err := DescribeRedis(tc.cfg, func() string { return master })
			if err != nil {
				t.Fatal(err)
			}
			s := describe()
			if s.Where != tc.where || s.CLI != tc.cli {
				t.Errorf("got %q, %q; want %q, %q", s.Where, s.CLI, tc.where, tc.cli)
			}
			if strings.Contains(s.Where+s.CLI, "s3cret") || strings.Contains(s.CLI, "26379") {
				t.Error("the password or a sentinel shows")
			}
		})
	}
}

// A click on Revoke brings the commands it sent, as a click on Count does:
// the panel's "What this request did in Redis" must not go on showing the
// page load's while a student looks in MONITOR for the revoke's. The list's
// own refresh on a live update is no click: the page's trace stays.
func TestARevokeClickBringsItsOwnTrace(t *testing.T) {
	ta := newTestApp(t)
	laptop, phone := ta.client(), ta.client()
	ta.register(laptop, "rita", "rita-password")
	if r := ta.post(phone, "/login", url.Values{"username": {"rita"}, "password": {"rita-password"}}); r.status != http.StatusSeeOther {
		t.Fatalf("login on the phone: %d", r.status)
	}
	id := sessions.ID(ta.token(phone))
	r := ta.post(laptop, "/sessions/"+id+"/revoke", nil, "HX-Request", "true", "HX-Target", views.IDSessionList)
	if !strings.Contains(r.body, `id="redis-trace" class="redis-trace" aria-label="What this request did in Redis" hx-swap-oob="true"`) {
		t.Fatalf("no out-of-band trace in the revoke's answer:\n%s", r.body)
	}
	if !strings.Contains(r.body, `data-testid="trace-request">POST /sessions/`+id+`/revoke</code>`) || len(traceLines(r.body)) == 0 {
		t.Errorf("the revoke's trace does not name it or lists nothing: %q", traceLines(r.body))
	}
	refresh := ta.get(laptop, "/sessions", "HX-Request", "true", "HX-Trigger", views.IDSessionList, "HX-Target", views.IDSessionList)
	if strings.Contains(refresh.body, `id="redis-trace"`) {
		t.Errorf("the list's own refresh replaced the page's trace:\n%s", refresh.body)
	}
}

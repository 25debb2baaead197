package handlers

import (
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/views"
)

// The panel's trace is what a student holds up against redis-cli MONITOR:
// for each request, the commands MONITOR printed for it, in its order and
// spelling, are the commands the page lists, a script's own commands
// (MONITOR's "[0 lua]" lines) beneath the script call, nothing more and
// nothing left out. An argument may be cut short (a token, a long value),
// and is then marked with "…"; what is shown is MONITOR's text.
//
// The app reaches Redis as an ACL user, on database 2, with a client name,
// so every new connection has a handshake to show (AUTH, SETNAME, SELECT),
// and each is in the trace of the request that opened it.
func TestTraceIsWhatMonitorPrints(t *testing.T) {
	rs := redistest.Start(t)
	rs.MustDo("ACL", "SETUSER", "tracer", "on", ">tracer-password", "~*", "&*", "+@all")
	ta := newTestAppWith(t, rs, func(cfg *Config) {
		cfg.Redis.URL = "redis://tracer:tracer-password@" + rs.Addr() + "/2?client_name=sessionlab-trace"
	}, func(a *App) { a.TrustedProxies, _ = ParseTrustedProxies("127.0.0.1/32") })
	waitForTheHub(t, rs)
	mon := ta.redis.StartMonitor(t)
	browser, student := ta.client(), ta.client()
	handshakes := map[string]int{} // command name: how many traces list it
	const (
		proxiedCount = "a count with a trusted proxy's request id (its counted: key read and written)"
		proxiedRetry = "that request again, as nginx retries it (the count it made read, nothing written)"
	)
	onCountedKey := map[string]string{proxiedCount: "GET SET", proxiedRetry: "GET"}

	for _, step := range []struct {
		name string
		do   func() response
	}{
		{"a new browser's first count (a new pool connection: ROLE; scripts not yet loaded: EVALSHA, NOSCRIPT, EVAL)", func() response { return ta.get(browser, "/count") }},
		{"its first reuse (GET, touch, count)", func() response { return ta.get(browser, "/count") }},
		{"a count", func() response { return ta.get(browser, "/count") }},
		{"an htmx count", func() response {
			return ta.get(browser, "/count", "HX-Request", "true", "HX-Target", "view-count")
		}},
		{"after a sign-up, the profile: the account through the client-side cache, missed", func() response { return ta.get(student, "/profile") }},
		{"the profile again: the account from the client-side cache, not sent", func() response { return ta.get(student, "/profile") }},
		{"a logged-in count", func() response { return ta.get(student, "/count") }},
		{proxiedCount, func() response { return ta.get(student, "/count", "X-Request-Id", "nginx-trace-1") }},
		{proxiedRetry, func() response { return ta.get(student, "/count", "X-Request-Id", "nginx-trace-1") }},
		{"after Redis closed the Redis client's connections, the profile: a new one, with its handshake (HELLO, CLIENT TRACKING, SELECT)", func() response { return ta.get(student, "/profile") }},
	} {
		switch {
		case strings.HasPrefix(step.name, "after a sign-up"):
			// A sign-up answers with a redirect: no page, so no trace to compare.
			mon.Around(t, func() { ta.register(student, "alice", "correct-horse-1") })
		case strings.HasPrefix(step.name, "after Redis closed"):
			killPipelines(t, rs)
		}
		t.Run(step.name, func(t *testing.T) {
			var r response
			seen := mon.Around(t, func() { r = step.do() })
			shown := renderedTrace(r.body)
			compareWithMonitor(t, shown, seen)
			if want, ok := onCountedKey[step.name]; ok {
				var ran []string
				for _, l := range seen {
					if l.Lua && len(l.Args) > 1 && strings.HasPrefix(l.Args[1], "counted:") {
						ran = append(ran, l.Args[0])
					}
				}
				if got := strings.Join(ran, " "); got != want {
					t.Errorf("the count script ran %q on the session's counted: key, want %q; MONITOR printed:\n%s", got, want, joinLines(seen))
				}
			}
			for _, l := range shown {
				if l.handshake {
					handshakes[l.Args[0]]++
				}
			}
			for _, c := range []*http.Client{browser, student} {
				if tok := ta.token(c); tok != "" && strings.Contains(r.body, tok) {
					t.Error("the page holds a full session token")
				}
			}
		})
	}
	// The first count's new pool connection, and the Redis client's new
	// connection after the kill (and maybe its second pipeline before).
	for _, cmd := range []string{"AUTH", "SELECT", "HELLO", "CLIENT"} {
		if handshakes[cmd] == 0 {
			t.Errorf("no trace listed a handshake's %s; the handshakes listed: %v", cmd, handshakes)
		}
	}
}

// rueidisClients are the app's rueidis connections as Redis lists them
// (rueidis speaks RESP3; the session pool and MONITOR speak RESP2): their
// IDs and the last command each ran.
func rueidisClients(rs *redistest.Server) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(rs.MustDo("CLIENT", "LIST"), "\n") {
		if !strings.Contains(line, " resp=3") {
			continue
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
		_, cmd, _ := strings.Cut(line, " cmd=")
		cmd, _, _ = strings.Cut(cmd, " ")
		out[id] = cmd
	}
	return out
}

// waitForTheHub waits until the live hub has opened its connection, in the
// background when the app starts: a handshake that is no request's.
func waitForTheHub(t *testing.T, rs *redistest.Server) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(rueidisClients(rs)) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("the live hub opened no connection of its own: %v", rueidisClients(rs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// killPipelines closes the connections that carried the app's commands (not
// the live hub's, which has sent nothing but its handshake): the client's
// next command opens a new one (a read it had sent on a closed one it sends
// again).
func killPipelines(t *testing.T, rs *redistest.Server) {
	t.Helper()
	n := 0
	for id, cmd := range rueidisClients(rs) {
		switch cmd {
		case "hello", "select", "client|tracking", "subscribe":
		default:
			rs.MustDo("CLIENT", "KILL", "ID", id)
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no pipeline connection to close: %v", rueidisClients(rs))
	}
}

// The panel's own request and the live stream are not the page's request,
// though MONITOR prints their commands among the page's: each lists its
// own, marked as not the request's, and each list is what MONITOR printed
// for it, so a student can place every line.
func TestOwnTrafficIsWhatMonitorPrints(t *testing.T) {
	ta := newTestApp(t)
	waitForTheHub(t, ta.redis)
	mon := ta.redis.StartMonitor(t)
	c := ta.client()
	ta.register(c, "olive", "olive-password-1")
	ta.get(c, "/count")

	t.Run("the panel's own request", func(t *testing.T) {
		var r response
		seen := mon.Around(t, func() { r = ta.get(c, "/redis", "HX-Request", "true", "HX-Target", views.IDRedisPanel) })
		shown := renderedList(r.body, "own-trace", ownItemRe)
		if len(shown) == 0 || strings.Count(r.body, `data-own="panel"`) != strings.Count(r.body, `data-testid="own-command"`) {
			t.Fatalf("the panel does not list its own commands, each marked as the panel's:\n%s", r.body)
		}
		if !strings.Contains(r.body, "Not part of this request: the panel's own") {
			t.Error("the panel's own commands are not headed as not part of the request")
		}
		compareWithMonitor(t, shown, seen)
	})
	t.Run("the live stream as it opened", func(t *testing.T) {
		var own apptest.Event
		seen := mon.Around(t, func() { own = apptest.OpenStream(t, c, ta.srv.URL+"/live").Next(views.SSEOwn) })
		shown := renderedList(own.Data, "own-trace", ownItemRe)
		if len(shown) == 0 || strings.Count(own.Data, `data-own="live"`) != strings.Count(own.Data, `data-testid="own-command"`) ||
			!strings.Contains(own.Data, `"SUBSCRIBE"`) {
			t.Fatalf("the stream does not list its own commands (SUBSCRIBE among them), each marked as the stream's:\n%s", own.Data)
		}
		compareWithMonitor(t, shown, seen)
	})
	t.Run("a page has the place the stream's list goes", func(t *testing.T) {
		r := ta.get(c, "/count")
		if !strings.Contains(r.body, `data-testid="live-own" `+views.AttrLiveSwap+`="`+views.SSEOwn+`"`) {
			t.Error("the page has no element the stream's own list replaces")
		}
	})
}

// traceLine is one command: who ran it ("lua" for a script's own, as
// MONITOR says) and its arguments as MONITOR prints them (quoted, escaped).
type traceLine struct {
	redistest.Line
	handshake bool // shown as opening the connection the request needed
}

// compareWithMonitor checks the trace against MONITOR, line by line. A shown
// argument matches MONITOR's when it is the same text, or, cut with "…",
// when MONITOR's holds the shown pieces in order where the cuts are.
func compareWithMonitor(t *testing.T, shown []traceLine, seen []redistest.Line) {
	t.Helper()
	var sent []traceLine
	for _, l := range shown {
		if l.Args == nil { // answered from the client-side cache: nothing went to Redis
			continue
		}
		sent = append(sent, l)
	}
	n := max(len(sent), len(seen))
	for i := range n {
		switch {
		case i >= len(sent):
			t.Errorf("command %d: MONITOR printed %s; the trace ends before it", i+1, seen[i])
		case i >= len(seen):
			t.Errorf("command %d: the trace shows %s; MONITOR printed nothing more", i+1, sent[i])
		case !sameCommand(sent[i], seen[i]):
			t.Errorf("command %d:\n  trace:   %s\n  MONITOR: %s", i+1, sent[i], seen[i])
		}
	}
	if t.Failed() {
		t.Logf("the whole trace:\n%s\nMONITOR:\n%s", joinLines(shown), joinLines(seen))
	}
}

func joinLines[L fmt.Stringer](ls []L) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString("  " + l.String() + "\n")
	}
	return b.String()
}

func sameCommand(shown traceLine, seen redistest.Line) bool {
	if shown.Lua != seen.Lua || len(shown.Args) != len(seen.Args) {
		return false
	}
	for i, a := range shown.Args {
		pieces := strings.Split(a, "…")
		for j := range pieces {
			pieces[j] = regexp.QuoteMeta(pieces[j])
		}
		if !regexp.MustCompile(`^` + strings.Join(pieces, `.*`) + `$`).MatchString(seen.Args[i]) {
			return false
		}
	}
	return true
}

var (
	traceItemRe = regexp.MustCompile(`<li data-testid="trace-(?:script-)?command"([^>]*)>`)
	ownItemRe   = regexp.MustCompile(`<li data-testid="(?:own-command|trace-script-command)"([^>]*)>`)
	tagRe       = regexp.MustCompile(`<[^>]*>`)
	smallRe     = regexp.MustCompile(`(?s)<small.*?</small>`)
)

// renderedTrace reads the commands of the page's "What this request did in
// Redis", as a student reads them: each item's text up to its reply (the
// arrow), notes in <small> left out; a script's own commands are the
// "[0 lua]" ones. A command answered from the
// client-side cache has no arguments: it was not sent.
func renderedTrace(body string) []traceLine {
	return renderedList(body, "redis-trace", traceItemRe)
}

// renderedList reads the commands of the list with the test id, as
// renderedTrace does, its items found by item.
func renderedList(body, list string, item *regexp.Regexp) []traceLine {
	start := strings.Index(body, `data-testid="`+list+`"`)
	if start < 0 {
		return nil
	}
	body = body[start:]
	var out []traceLine
	for _, m := range item.FindAllStringSubmatchIndex(body, -1) {
		item := body[m[1]:]
		if end := strings.IndexAny(item, "→"); end >= 0 {
			item = item[:end]
		}
		if i := strings.Index(item, "<ol"); i >= 0 {
			item = item[:i]
		}
		if i := strings.Index(item, "</li>"); i >= 0 {
			item = item[:i]
		}
		whole := body[m[1]:]
		if i := strings.Index(whole, "</li>"); i >= 0 {
			whole = whole[:i]
		}
		text := strings.TrimSpace(html.UnescapeString(tagRe.ReplaceAllString(smallRe.ReplaceAllString(item, ""), "")))
		l := traceLine{Line: redistest.Line{Lua: strings.Contains(body[m[0]:m[1]], "trace-script-command")},
			handshake: strings.Contains(whole, "opening the connection this request needed")}
		if !strings.Contains(body[m[0]:m[1]], `data-sent="no"`) {
			l.Args = redistest.SplitArgs(text)
		}
		out = append(out, l)
	}
	return out
}

// The lab page reads the session's key, the instances and the browsers
// list: its trace says "in this order, as redis-cli MONITOR prints them",
// so it sends them one after another, never at once (sent at once, the
// trace listed them as their replies came, and MONITOR often printed
// another order).
func TestLabTraceIsWhatMonitorPrints(t *testing.T) {
	ta := newTestApp(t)
	waitForTheHub(t, ta.redis)
	mon := ta.redis.StartMonitor(t)
	c := ta.client()
	ta.register(c, "lena", "lena-password-1")
	ta.get(c, "/count")
	ta.get(c, "/lab")
	for i := range 40 {
		var r response
		seen := mon.Around(t, func() { r = ta.get(c, "/lab") })
		shown := renderedTrace(r.body)
		compareWithMonitor(t, shown, seen)
		if t.Failed() {
			t.Fatalf("GET /lab number %d: the trace is not what MONITOR printed", i+1)
		}
	}
}

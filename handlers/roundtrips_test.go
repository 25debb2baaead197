package handlers

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// roundTrips runs fn and counts, with MONITOR, the round trips the app
// made to rs meanwhile: each command a client sent, a MULTI … EXEC block
// as one, what Lua scripts run inside Redis not at all.
func roundTrips(t *testing.T, rs *redistest.Server, fn func()) (trips int, cmds []string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", rs.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Fatalf("MONITOR: %q %v", l, err)
	}
	fn()
	marker := "roundtrips-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	rs.MustDo("ECHO", marker)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	inMulti := map[string]bool{}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("MONITOR: %v (so far %v)", err, cmds)
		}
		if strings.Contains(l, marker) {
			return trips, cmds
		}
		// +1700000000.123456 [0 127.0.0.1:5555] "GET" "sess:..."
		open, end := strings.IndexByte(l, '['), strings.IndexByte(l, ']')
		if open < 0 || end < open {
			continue
		}
		src := strings.Fields(l[open+1 : end])
		if len(src) < 2 || src[1] == "lua" {
			continue
		}
		cmd := strings.ToUpper(strings.Trim(strings.Fields(l[end+1:])[0], `"`))
		if connectionSetup[cmd] {
			continue // a client opening a connection, not the request's work
		}
		cmds = append(cmds, cmd)
		switch client := src[1]; {
		case cmd == "MULTI":
			inMulti[client] = true
			trips++
		case inMulti[client]:
			inMulti[client] = cmd != "EXEC" && cmd != "DISCARD"
		default:
			trips++
		}
	}
}

// connectionSetup are the commands a client sends when it opens a
// connection (rueidis: HELLO, CLIENT TRACKING, ...), as internal/bench
// leaves them out too.
var connectionSetup = map[string]bool{"HELLO": true, "CLIENT": true, "AUTH": true, "SELECT": true, "PING": true, "ROLE": true}

// A new visitor's first count, with the limit on new anonymous sessions
// on, takes one round trip: the browsers script counts the new session
// against the limit and writes it (captureFirstSave), and the save sends
// nothing more. A visitor past the limit is refused in it, and nothing is
// stored for it: no session, no row in the browsers list.
func TestNewSessionOneRoundTrip(t *testing.T) {
	ta := newTestApp(t, behindProxy)
	p := throttle.DefaultPolicy
	p.Anonymous = throttle.Limit{Max: 2, Window: time.Hour}
	ta.app.Throttle = throttle.New(newRedisClient(t, ta.redis), p)
	countFrom := func(c *http.Client) response {
		t.Helper()
		return ta.get(c, "/count", "X-Forwarded-For", "192.0.2.77")
	}
	countFrom(ta.client()) // the scripts are loaded (a first EVALSHA may need an EVAL)

	var r response
	c := ta.client()
	trips, cmds := roundTrips(t, ta.redis, func() { r = countFrom(c) })
	wantStatus(t, "second new session", r, http.StatusOK)
	if trips != 1 {
		t.Errorf("a new session's first count: %d round trips %v, want 1", trips, cmds)
	}
	// What the script wrote is the session the save would have written:
	// the next count reads it and counts on.
	if r = ta.get(c, "/count", "X-Forwarded-For", "192.0.2.77"); !strings.Contains(r.body, `data-testid="view-count">2<`) {
		t.Errorf("the second count of the new session does not say 2:\n%s", r.body)
	}

	rows := func() string { return ta.redis.MustDo("HLEN", sessions.BrowsersKey("192.0.2.77")) }
	stored := func() string { return ta.redis.MustDo("EVAL", `return #redis.call('KEYS', 'sess:*')`, "0") }
	beforeRows, beforeSessions := rows(), stored()
	trips, cmds = roundTrips(t, ta.redis, func() { r = countFrom(ta.client()) })
	wantStatus(t, "past the limit", r, http.StatusTooManyRequests)
	if trips > 1 {
		t.Errorf("a refused new session: %d round trips %v, want 1", trips, cmds)
	}
	if after := rows(); after != beforeRows {
		t.Errorf("browsers of the address: %s rows -> %s: a refused session was listed", beforeRows, after)
	}
	if after := stored(); after != beforeSessions {
		t.Errorf("sessions stored: %s -> %s: a refused session was stored", beforeSessions, after)
	}
}

// A logged-in count reads its session and counts in one round trip once
// this process has seen the session logged in (countFirst); an instance
// that has not yet seen it reads first, in two, as does a count of a
// session whose credentials changed, which then ends and counts nothing
// in it.
func TestALoggedInCountIsOneRoundTrip(t *testing.T) {
	a := newTestApp(t)
	c := a.client()
	a.register(c, "alice", "alice-password")
	token := a.token(c)
	// The scripts are loaded (a first EVALSHA may need an EVAL): the count
	// script, then the one that reads and counts.
	a.get(c, "/count")
	a.get(c, "/count")

	count := func(ta *testApp, want string, wantTrips int) {
		t.Helper()
		var r response
		trips, cmds := roundTrips(t, ta.redis, func() { r = ta.get(c, "/count") })
		wantStatus(t, "count", r, http.StatusOK)
		if got := viewCount(t, r.body); got != want {
			t.Errorf("count: page says %s, want %s", got, want)
		}
		if trips != wantTrips {
			t.Errorf("count %s: %d round trips %v, want %d", want, trips, cmds, wantTrips)
		}
	}
	count(a, "3", 1)
	count(a, "4", 1)
	// Another instance, the same cookie: its first count also reads the
	// account into its client-side cache.
	b := newTestAppOn(t, a.redis)
	count(b, "5", 3)
	count(b, "6", 1)

	// The account's credentials change (another browser's password
	// change, as its generation is all a session holds of them).
	acct := a.redis.MustDo("GET", "user:alice")
	gen := acct[strings.Index(acct, `"gen":"`)+len(`"gen":"`):]
	gen = gen[:strings.IndexByte(gen, '"')]
	a.redis.MustDo("SET", "user:alice", strings.Replace(acct, gen, "0000000000000001", 1))
	// Once the app's client-side cache has heard of it, as it does within
	// moments: the script reads Redis, the app's check its cache.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if current, err := a.app.Accounts.Current(t.Context(), "alice", gen); err == nil && !current {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the app still reads generation %s as current (%v)", gen, err)
		}
	}
	var r response
	trips, cmds := roundTrips(t, a.redis, func() { r = a.get(c, "/count") })
	wantStatus(t, "count after the credentials changed", r, http.StatusOK)
	if got := viewCount(t, r.body); got != "1" {
		t.Errorf("count after the credentials changed: page says %s, want 1, a new session's", got)
	}
	// Counted nothing: the usual path read the session again.
	if trips < 2 || cmds[0] != "EVALSHA" || cmds[1] != "GET" {
		t.Errorf("count after the credentials changed: %d round trips %v, want the checked count, then the usual read", trips, cmds)
	}
	if after := a.redis.MustDo("EXISTS", sessions.Key(token)); after != "0" {
		t.Errorf("the session whose credentials changed is still stored (EXISTS %s)", after)
	}
}

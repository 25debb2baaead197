package handlers

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// shortTally is the period the tests give the tally lines instead of a
// minute, so a test waits for a line's end of period a fraction of a second.
const shortTally = 300 * time.Millisecond

// tallyEvery makes the App's tally lines come every d.
func tallyEvery(d time.Duration) func(*App) {
	return func(a *App) { a.tallies.every = d }
}

// countedIn is what the log holds of msg's lines: how many, and the sum of
// their count field (requests=, blocked=, refused=…).
func countedIn(t *testing.T, ta *testApp, msg, count string) (lines, total int) {
	t.Helper()
	field := regexp.MustCompile(` ` + count + `=(\d+) `)
	for line := range strings.Lines(ta.logs.String()) {
		if !lineHas(line, msg) {
			continue
		}
		lines++
		m := field.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("a %q line without %s=:\n%s", msg, count, line)
		}
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return lines, total
}

// waitTallied waits until msg's lines count want events in all.
func waitTallied(t *testing.T, ta *testApp, msg, count string, want int) (lines int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines, total := countedIn(t, ta, msg, count)
		if total == want {
			return lines
		}
		if total > want || time.Now().After(deadline) {
			t.Fatalf("%q lines count %d, want %d (no further event came; the period is %v):\n%s",
				msg, total, want, shortTally, ta.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The lines that count events a line a period (what a client does to its
// own requests, refusals, an outage's failed requests) are written at the
// end of their period whether or not another event comes: the first event
// at once, then the events since in one line when the period ends. Before,
// only the next event after the period wrote the line, so the end of a
// burst was never logged (an operator never saw the last minute of an
// attack), nor an event followed by silence.
func TestATallyIsWrittenAtTheEndOfItsPeriod(t *testing.T) {
	type event struct {
		name, msg, count string
		options          []func(*App)
		makeEvent        func(t *testing.T, ta *testApp) func() // setup, then one event
	}
	renewedToken := event{"a token a login renewed, sent again", "request on a renewed token", "requests", nil, renewedTokenSentAgain}

	t.Run("a burst, then silence: its end is written within the period", func(t *testing.T) {
		const n = 20
		ta := newTestApp(t, tallyEvery(shortTally))
		ev := renewedToken.makeEvent(t, ta)
		start := time.Now()
		var wg sync.WaitGroup
		for range n {
			wg.Go(ev)
		}
		wg.Wait()
		took := time.Since(start)
		lines := waitTallied(t, ta, renewedToken.msg, renewedToken.count, n)
		// The first at once, then at most one per period the burst lasted,
		// and the one at the end of the last.
		if most := 2 + int(took/shortTally); lines > most {
			t.Errorf("%d lines for %d requests in %v, want at most %d (one per %v):\n%s", lines, n, took, most, shortTally, ta.logs.String())
		}
		ta.noErrorLogged(t)
	})

	for _, tc := range []event{
		renewedToken,
		{"a cross-origin request blocked", "cross-origin request blocked", "blocked", nil,
			func(t *testing.T, ta *testApp) func() {
				c := ta.client()
				return func() {
					if r := ta.post(c, "/logout", nil, "Sec-Fetch-Site", "cross-site"); r.status != http.StatusForbidden {
						t.Errorf("cross-site POST /logout: %d, want 403", r.status)
					}
				}
			}},
		{"a request a Redis outage failed", "Redis cannot serve", "failed_requests", nil,
			func(t *testing.T, ta *testApp) func() {
				c := ta.client()
				ta.register(c, "gus", "gus-password")
				ta.redis.Stop()
				// The pool's open connection fails as "connection lost",
				// then every new one is refused: one kind from here on.
				waitFor(t, "a connection refused", func() bool {
					ta.get(c, "/count")
					return strings.Contains(ta.logs.String(), `kind="connection refused"`)
				})
				return func() {
					if r := ta.get(c, "/count"); r.status != http.StatusServiceUnavailable {
						t.Errorf("GET /count with Redis stopped: %d, want 503", r.status)
					}
				}
			}},
		{"a live stream past a bound", "live streams refused at a bound (counts since the last such line)", "refused",
			[]func(*App){func(a *App) { a.StreamLimits = StreamLimits{PerSession: 1} }},
			func(t *testing.T, ta *testApp) func() {
				c := ta.client()
				ta.get(c, "/count")
				if s := apptest.OpenStream(t, c, ta.srv.URL+"/live"); s.Status != http.StatusOK {
					t.Fatalf("first stream: %d", s.Status)
				}
				return func() {
					if r := ta.get(c, "/live"); r.status != http.StatusTooManyRequests {
						t.Errorf("second stream of a session: %d, want 429", r.status)
					}
				}
			}},
		{"a connection past a bound", "connections refused at a bound (counts since the last such line)", "refused",
			[]func(*App){func(a *App) { a.ConnLimits = ConnLimits{PerProcess: 1} }},
			func(t *testing.T, ta *testApp) func() {
				addr := strings.TrimPrefix(ta.srv.URL, "http://")
				if status, err := getHealthz(dialIdle(t, addr)); status != http.StatusOK {
					t.Fatalf("the one connection allowed: %d, %v", status, err)
				}
				return func() {
					c := dialIdle(t, addr)
					defer c.Close()
					if status, err := getHealthz(c); status != 0 || err == nil {
						t.Errorf("a connection past the bound of 1: %d, %v; want it closed unanswered", status, err)
					}
				}
			}},
	} {
		t.Run(tc.name+": an event after a line, then silence, is written", func(t *testing.T) {
			ta := newTestApp(t, append(tc.options, tallyEvery(shortTally))...)
			ev := tc.makeEvent(t, ta)
			// The setup's lines; then an event written at once (or counted
			// in the setup's pending line), and one within its period (on a
			// slow machine, after it: at once).
			lines0, total0 := countedIn(t, ta, tc.msg, tc.count)
			ev()
			ev()
			if lines := waitTallied(t, ta, tc.msg, tc.count, total0+2) - lines0; lines < 1 || lines > 2 {
				t.Errorf("%d lines for 2 events, want 1 or 2:\n%s", lines, ta.logs.String())
			}
		})
	}
}

// POST /lab/use (-lab) takes a pasted session ID each time it is sent, so a
// client could write a line per request: it is tallied as the other lines a
// client can cause are, at most a line a period counting every request
// (before: a line per request).
func TestLabUseIsALineAPeriod(t *testing.T) {
	const m = 20
	ta := newTestApp(t, func(a *App) { a.Lab = true }, tallyEvery(shortTally))
	one, two := ta.client(), ta.client()
	ta.register(one, "hana", "hana-password")
	id := ta.token(one)
	start := time.Now()
	for range m {
		if r := ta.post(two, "/lab/use", url.Values{"id": {id}}); r.status != http.StatusSeeOther {
			t.Fatalf("POST /lab/use: %d", r.status)
		}
	}
	took := time.Since(start)
	const msg = "lab: a browser took a pasted session ID"
	if lines := strings.Count(ta.logs.String(), "msg=\""+msg+"\""); lines > 2+int(took/shortTally) {
		t.Fatalf("%d lines for %d requests in %v, want at most one per %v:\n%s", lines, m, took, shortTally, ta.logs.String())
	}
	waitTallied(t, ta, msg, "taken", m)
	for line := range strings.Lines(ta.logs.String()) {
		if lineHas(line, msg) && (!lineHas(line, "", "sessions=1") || !strings.Contains(line, ` top="`+ta.app.LogID(id)+" (")) {
			t.Errorf("a line does not name the one session taken:\n%s", line)
		}
		if strings.Contains(line, id) {
			t.Errorf("a line holds the whole token:\n%s", line)
		}
	}
}

// A line waiting for the end of its period costs nothing per event: one
// timer serves every kind, so a flood starts no goroutine; a flush (the
// shutdown's) writes every kind's pending line, and the lines count every
// event.
func TestPendingTallyLinesHoldNoGoroutinePerEvent(t *testing.T) {
	const events, kinds = 10_000, 3
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, nil))
	l := tallyLog{every: time.Hour}
	before := runtime.NumGoroutine()
	for i := range events {
		l.note(context.Background(), log, tallyEvent{kind: fmt.Sprint("kind ", i%kinds), msg: "x", names: byClient,
			key: fmt.Sprint("192.0.2.", i%200)})
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		t.Errorf("%d goroutines after %d events pending, %d before", n, events, before)
	}
	if n := strings.Count(out.String(), "msg=x "); n != kinds {
		t.Fatalf("%d lines before the flush, want %d (each kind's first):\n%s", n, kinds, out.String())
	}
	l.flush()
	total := 0
	for _, m := range regexp.MustCompile(` refused=(\d+) `).FindAllStringSubmatch(out.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	if n := strings.Count(out.String(), "msg=x "); n != 2*kinds || total != events {
		t.Errorf("after the flush: %d lines counting %d, want %d counting %d:\n%s", n, total, 2*kinds, events, out.String())
	}
}

package failover

import (
	"cmp"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// TestNemesis is a Jepsen-style test of the promise that nothing
// acknowledged is lost when the Redis master fails over or stalls. Two
// instances share a Sentinel deployment (master, replica, three sentinels on
// the sentinels' test defaults: down after 1 s, failover timeout 5 s); four
// sessions (two of them logged in) each count one view at a time, on either
// instance, and a new browser makes its first count every 250 ms, while a
// nemesis every few seconds either asks for a failover (SENTINEL FAILOVER)
// or stalls the current master for two seconds (CLIENT PAUSE 2000: a GC
// pause, a slow disk, a short partition; the sentinels fail it over
// meanwhile, and it then answers again as a master until a sentinel
// reconfigures it).
//
// The checker reads every answer: a session counts one view at a time, so
// the counts it is told must rise. A count told lower than or equal to one
// told before is a drop (acknowledged counts lost); a count that rises by
// more than the answers that could have counted (200s, and 503s that say
// the view "may or may not" have been counted) is a 503 that said "nothing
// was changed" and lied. No 500, and every request gets an answer. A new
// browser told 1 must be told 2 by its next count, afterwards: its session,
// written by the script that counted it, was kept.
//
// NEMESIS_DURATION (default 30s) sets how long the nemesis runs,
// NEMESIS_EVERY (default 4s-8s) how often it strikes, NEMESIS_SEED replays
// a run's schedule. `go tool task nemesis` runs the setup: 60 s,
// every 6-10 s. The shorter default for `go tool task test` strikes more
// often: the loss needs a second failover within about 8 s of the first
// (see docs/reliability.md), and 30 s at 6-10 s give too few such pairs to
// fail reliably on code that loses counts.
func TestNemesis(t *testing.T) {
	duration := 30 * time.Second
	if s := os.Getenv("NEMESIS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("NEMESIS_DURATION=%q: want a duration such as 60s", s)
		}
		duration = d
	}
	every := [2]time.Duration{4 * time.Second, 8 * time.Second}
	if s := os.Getenv("NEMESIS_EVERY"); s != "" {
		lo, hi, _ := strings.Cut(s, "-")
		a, err1 := time.ParseDuration(lo)
		b, err2 := time.ParseDuration(hi)
		if err1 != nil || err2 != nil || a <= 0 || b < a {
			t.Fatalf("NEMESIS_EVERY=%q: want a range such as 6s-10s", s)
		}
		every = [2]time.Duration{a, b}
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("NEMESIS_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("NEMESIS_SEED=%q: want a number", s)
		}
		seed = n
	}
	t.Logf("NEMESIS_SEED=%d NEMESIS_DURATION=%v NEMESIS_EVERY=%v-%v", seed, duration, every[0], every[1])

	topo := redistest.StartTopology(t)
	apps := []*apptest.Process{
		apptest.Start(t, bin, "-redis", topo.URL(), "-instance", "a"),
		apptest.Start(t, bin, "-redis", topo.URL(), "-instance", "b"),
	}
	const sessions = 4
	clients := make([]*http.Client, sessions)
	histories := make([]history, sessions)
	for i := range clients {
		clients[i] = apptest.Client(t)
		if i%2 == 1 {
			// Logged in: its counts read the session and count in one
			// round trip once an instance has seen it (handlers/countfirst.go).
			register(t, clients[i], apps[0], fmt.Sprintf("nemesis%d", i))
		}
		histories[i].add(countAnswer(clients[i], apps[i%2], i%2, time.Now()))
	}

	start := time.Now()
	end := start.Add(duration)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for n := i; time.Now().Before(end); n++ {
				a := countAnswer(clients[i], apps[n%2], n%2, start)
				histories[i].add(a)
				if a.status == http.StatusServiceUnavailable {
					time.Sleep(50 * time.Millisecond) // a browser would wait longer
				}
			}
		})
	}
	// New browsers, one every 250 ms (within the limit on new sessions from
	// one address): each first count writes its session in the script that
	// counts it (captureFirstSave), so a 200 there is a session acknowledged.
	var firsts []*http.Client // each got a 200 saying 1
	var firstStatuses = map[string]int{}
	wg.Go(func() {
		for n := 0; time.Now().Before(end); n++ {
			c := apptest.Client(t)
			a := countAnswer(c, apps[n%2], n%2, start)
			word := cmp.Or(statusWords[a.status], strconv.Itoa(a.status))
			if a.status == http.StatusServiceUnavailable && a.unsure {
				word = "503 may or may not"
			}
			firstStatuses[word]++
			switch {
			case a.err != "":
				t.Errorf("a new browser's first count at %v: %s: %s", a.at.Round(time.Millisecond), word, a.err)
			case a.status == http.StatusOK && a.count != 1:
				t.Errorf("a new browser's first count at %v was told %d", a.at.Round(time.Millisecond), a.count)
			case a.status == http.StatusOK:
				firsts = append(firsts, c)
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
	ops := runNemesis(t, topo, rand.New(rand.NewPCG(seed, 0)), every, start, end)
	wg.Wait()

	// Afterwards every session counts again, once the deployment has
	// settled: the count it is told still rises.
	for i, c := range clients {
		deadline := time.Now().Add(30 * time.Second)
		for {
			a := countAnswer(c, apps[i%2], i%2, start)
			histories[i].add(a)
			if a.status == http.StatusOK || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Every new browser told 1 counts 2 now, on the other instance: its
	// session was kept.
	firstsLost := 0
	deadline := time.Now().Add(30 * time.Second) // for all: the deployment has settled
	for i, c := range firsts {
		a := countAnswer(c, apps[(i+1)%2], (i+1)%2, start)
		for a.status != http.StatusOK && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			a = countAnswer(c, apps[(i+1)%2], (i+1)%2, start)
		}
		switch {
		case a.status != http.StatusOK:
			t.Errorf("new browser %d: its second count still gets %d 30 s after the sessions counted again", i, a.status)
		case a.count == 1:
			firstsLost++
			t.Errorf("new browser %d: told 1 again: its acknowledged first count (and its session) was lost", i)
		case a.count != 2:
			t.Errorf("new browser %d: told %d after 1, with no other count", i, a.count)
		}
	}
	t.Logf("new browsers: first counts %v; %d acknowledged and checked after, %d of them lost", firstStatuses, len(firsts), firstsLost)

	var total verdict
	for i := range histories {
		v := histories[i].check()
		for _, p := range v.problems {
			t.Errorf("session %d: %s", i, p)
		}
		total.merge(v)
	}
	if last := histories[0].answers[len(histories[0].answers)-1]; last.status != http.StatusOK {
		t.Errorf("session 0 still gets %d 30 s after the nemesis stopped", last.status)
	}
	for _, p := range apps {
		if strings.Contains(p.Log(), "status=500") {
			t.Errorf("instance %s logged a 500", p.Addr)
		}
	}
	t.Logf("nemesis report: %s; %s", ops, total)
	t.Logf("what the nemesis did, and what the sentinels and the apps saw (UTC):\n%s", failoverTimeline(topo, apps, ops))
}

// register makes an account and logs c in with it, on app.
func register(t *testing.T, c *http.Client, app *apptest.Process, name string) {
	t.Helper()
	resp, err := c.PostForm(app.URL+"/register", url.Values{"username": {name}, "password": {name + "-password"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("register %s: status %d, want 303\n%.300s", name, resp.StatusCode, body)
	}
}

// answer is one answer to GET /count as a session was told it.
type answer struct {
	at     time.Duration // since the nemesis started
	app    int           // which instance
	status int           // 0: no answer at all
	count  int           // the count told (a 200)
	unsure bool          // a 503 that says the view may or may not have been counted
	err    string        // what went wrong, for the report
	id     string        // the request id the answer carries (X-Request-Id), for the instance's log
	trace  string        // a 200's Redis trace in short: what the request sent, for a problem's report
}

var statusWords = map[int]string{0: "no answer", 200: "200", 500: "500"}

// countAnswer counts one view on app and records the answer.
func countAnswer(c *http.Client, app *apptest.Process, which int, start time.Time) answer {
	a := answer{at: time.Since(start), app: which}
	resp, err := c.Get(app.URL + "/count")
	if err != nil {
		a.err = err.Error()
		return a
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.status = resp.StatusCode
	a.id = resp.Header.Get("X-Request-Id")
	switch a.status {
	case http.StatusOK:
		n, err := strconv.Atoi(viewCountOf(string(body)))
		if err != nil {
			a.status, a.err = -1, "a 200 without a count"
		}
		a.count = n
		a.trace = traceOf(string(body))
	case http.StatusServiceUnavailable:
		a.unsure = strings.Contains(string(body), "may or may not")
		if resp.Header.Get("Retry-After") == "" {
			a.err = "a 503 without Retry-After"
		}
	default:
		a.err = fmt.Sprintf("%.200s", body)
	}
	return a
}

// traceCommand is one command a page's Redis trace lists (not a script's own).
var traceCommand = regexp.MustCompile(`data-testid="trace-command"><code>("[A-Z]+")[^<]*</code>(?: <small>\(the ([^<]*) script\)</small>)?(?: → ([^<]*?), [0-9.]+ ms)?`)

// traceOf is a page's trace in short: each command, its script, its reply.
func traceOf(body string) string {
	var cmds []string
	for _, m := range traceCommand.FindAllStringSubmatch(body, -1) {
		cmds = append(cmds, strings.TrimSpace(html.UnescapeString(m[1]+" "+m[2]+" → "+m[3])))
	}
	return strings.Join(cmds, "; ")
}

// viewCountOf is the count a /count page shows, "" if none.
func viewCountOf(body string) string {
	const marker = `data-testid="view-count"`
	_, rest, ok := strings.Cut(body, marker)
	if !ok {
		return ""
	}
	_, rest, _ = strings.Cut(rest, ">")
	n, _, _ := strings.Cut(rest, "<")
	return n
}

// history is every answer one session was told, in order.
type history struct {
	mu      sync.Mutex
	answers []answer
}

func (h *history) add(a answer) {
	h.mu.Lock()
	h.answers = append(h.answers, a)
	h.mu.Unlock()
}

// verdict is what the checker found in one or more histories.
type verdict struct {
	statuses map[string]int
	drops    int // counts told lower than or equal to one told before
	lost     int // acknowledged counts the drops threw away
	phantoms int // views counted that no answer allowed: a 503 that said nothing was changed, or a jump to another history
	problems []string
}

// check reads a session's answers in order.
func (h *history) check() verdict {
	v := verdict{statuses: map[string]int{}}
	last, lastAt := 0, time.Duration(0)
	mayHave := 0       // answers since the last count told that may have counted
	var since []string // those answers, for a problem's report
	for _, a := range h.answers {
		word := cmp.Or(statusWords[a.status], strconv.Itoa(a.status))
		switch {
		case a.status == http.StatusServiceUnavailable && a.unsure:
			word = "503 may or may not"
			mayHave++
		case a.status == http.StatusServiceUnavailable:
			word = "503 nothing changed"
		}
		v.statuses[word]++
		if a.err != "" {
			v.problems = append(v.problems, fmt.Sprintf("%s at %v on instance %d: %s", word, a.at.Round(time.Millisecond), a.app, a.err))
		}
		if a.status == 0 {
			mayHave++ // a request that got no answer may have counted
		}
		told := fmt.Sprintf("%s at %v on instance %d (request %s)", word, a.at.Round(time.Millisecond), a.app, a.id)
		if a.trace != "" {
			told += fmt.Sprintf(", told %d [trace: %s]", a.count, a.trace)
		}
		since = append(since, told)
		if a.status != http.StatusOK {
			continue
		}
		switch {
		case last == 0:
		case a.count <= last:
			v.drops++
			v.lost += last - a.count + 1
			v.problems = append(v.problems, fmt.Sprintf("told %d at %v (instance %d) after %d at %v: %d acknowledged counts lost",
				a.count, a.at.Round(time.Millisecond), a.app, last, lastAt.Round(time.Millisecond), last-a.count+1))
		case a.count-last-1 > mayHave:
			n := a.count - last - 1 - mayHave
			v.phantoms += n
			v.problems = append(v.problems, fmt.Sprintf("told %d at %v after %d at %v, with %d answers between that may have counted: %d views counted that no answer allowed (a 503 that said nothing was changed, or another history); the answers since: %s",
				a.count, a.at.Round(time.Millisecond), last, lastAt.Round(time.Millisecond), mayHave, n, strings.Join(since, "; ")))
		}
		last, lastAt, mayHave, since = a.count, a.at, 0, nil
	}
	return v
}

func (v *verdict) merge(o verdict) {
	if v.statuses == nil {
		v.statuses = map[string]int{}
	}
	for k, n := range o.statuses {
		v.statuses[k] += n
	}
	v.drops += o.drops
	v.lost += o.lost
	v.phantoms += o.phantoms
}

func (v verdict) String() string {
	words := make([]string, 0, len(v.statuses))
	for k := range v.statuses {
		words = append(words, k)
	}
	slices.Sort(words)
	var b strings.Builder
	b.WriteString("answers:")
	for _, k := range words {
		fmt.Fprintf(&b, " %s %d,", k, v.statuses[k])
	}
	fmt.Fprintf(&b, " drops %d, acknowledged counts lost %d, views counted that no answer allowed %d", v.drops, v.lost, v.phantoms)
	return b.String()
}

// nemesisOps is what the nemesis did.
type nemesisOps struct {
	log                        []string // wall clock (UTC) and what
	failovers, pauses, refused int
}

func (o nemesisOps) String() string {
	return fmt.Sprintf("nemesis: %d SENTINEL FAILOVER, %d CLIENT PAUSE 2000, %d refused by the sentinels", o.failovers, o.pauses, o.refused)
}

// runNemesis misbehaves every every[0] to every[1] (the first time after
// 1-3 s) until end: SENTINEL FAILOVER two times in three, else CLIENT PAUSE
// 2000.
func runNemesis(t *testing.T, topo *redistest.Topology, rng *rand.Rand, every [2]time.Duration, start, end time.Time) nemesisOps {
	var ops nemesisOps
	record := func(format string, args ...any) {
		ops.log = append(ops.log, time.Now().UTC().Format("15:04:05.000")+" nemesis: "+fmt.Sprintf(format, args...))
	}
	record("starts (answers' times are since now)")
	next := start.Add(time.Second + time.Duration(rng.Int64N(int64(2*time.Second))))
	for {
		if next.After(end) {
			time.Sleep(time.Until(end))
			return ops
		}
		time.Sleep(time.Until(next))
		next = next.Add(every[0] + time.Duration(rng.Int64N(int64(every[1]-every[0])+1)))
		master, err := sentinelsMaster(topo)
		if err != nil {
			record("no sentinel names a master: %v", err)
			ops.refused++
			continue
		}
		// Two failovers in a row are the danger (see docs/reliability.md), and
		// whether a stall becomes one depends on the sentinels' timing on a
		// busy machine: a failover asked for is one for sure.
		if rng.IntN(3) < 2 {
			if _, err := topo.Sentinels[rng.IntN(len(topo.Sentinels))].Do("SENTINEL", "FAILOVER", redistest.MasterSet); err != nil {
				record("SENTINEL FAILOVER (master %s) refused: %v", master, err)
				ops.refused++
				continue
			}
			record("SENTINEL FAILOVER (master %s)", master)
			ops.failovers++
			continue
		}
		i := slices.IndexFunc(topo.Nodes, func(n *redistest.Server) bool { return n.Addr() == master })
		if i < 0 {
			t.Errorf("the sentinels' master %s is none of the nodes", master)
			return ops
		}
		if _, err := topo.Nodes[i].Do("CLIENT", "PAUSE", "2000"); err != nil {
			record("CLIENT PAUSE 2000 on %s failed: %v", master, err)
			ops.refused++
			continue
		}
		record("CLIENT PAUSE 2000 on master %s", master)
		ops.pauses++
	}
}

// sentinelsMaster is the master the first sentinel that answers names.
func sentinelsMaster(topo *redistest.Topology) (string, error) {
	var last error
	for _, s := range topo.Sentinels {
		reply, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", redistest.MasterSet)
		if err == nil {
			if host, port, ok := strings.Cut(reply, "\n"); ok {
				return host + ":" + port, nil
			}
			err = fmt.Errorf("%q", reply)
		}
		last = err
	}
	return "", last
}

// sentinelEvents are the log lines that tell a failover's story.
var sentinelEvents = regexp.MustCompile(`[+-](sdown master|odown|try-failover|elected-leader|promoted-slave|switch-master|convert-to-slave|failover-end |failover-abort)`)

// failoverTimeline merges the nemesis's actions, the sentinels' failover
// events and the apps' Sentinel lines (the gate closing, opening on an
// abort, a new master, writes refused for want of a replica) by time.
func failoverTimeline(topo *redistest.Topology, apps []*apptest.Process, ops nemesisOps) string {
	lines := slices.Clone(ops.log)
	stamp := regexp.MustCompile(`\d\d:\d\d:\d\d\.\d\d\d`)
	for i, s := range topo.Sentinels {
		for line := range strings.Lines(s.Log()) {
			if sentinelEvents.MatchString(line) {
				at := stamp.FindString(line)
				_, event, _ := strings.Cut(line, at)
				lines = append(lines, fmt.Sprintf("%s sentinel %d:%s", at, i, strings.TrimRight(event, "\n")))
			}
		}
	}
	appStamp := regexp.MustCompile(`time=\S*T(\d\d:\d\d:\d\d\.\d\d\d)`)
	for i, p := range apps {
		for line := range strings.Lines(p.Log()) {
			if strings.Contains(line, "Redis Sentinel:") {
				if m := appStamp.FindStringSubmatch(line); m != nil {
					lines = append(lines, fmt.Sprintf("%s app %d: %s", m[1], i, strings.TrimRight(line, "\n")))
				}
			}
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

package proxy

import (
	"fmt"
	"html"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// counters are browsers counting one view at a time through nginx, each
// with its own session, while the cluster is disturbed. Each checks every
// answer: a session's acknowledged counts must rise, by exactly one after a
// 200 (a view counted twice is recorded; a 503 "may or may not have been
// counted", or no answer, may skip one), and any other failure is recorded.
type counters struct {
	url  string // nginx's, read once: c.state changes as processes restart
	stop chan struct{}
	wg   sync.WaitGroup

	browsers []*http.Client

	mu       sync.Mutex
	statuses map[int]int
	messages map[string]int // each failure page's message: which failure it was
	problems []string
	drops    []string
	twice    []string    // a count that rose by more than one right after a 200
	failures []time.Time // when each non-200 answer (or transport error) came
	lastOK   []time.Time // each browser's last 200
	acked    []int       // each browser's last acknowledged count
	exact    []bool      // each browser's last answer was a 200: the next count is acked+1
	answers  int
}

func countThroughNginx(c *cluster, browsers int) *counters {
	k := &counters{url: c.state.URL, stop: make(chan struct{}), statuses: map[int]int{}, messages: map[string]int{},
		lastOK: make([]time.Time, browsers), acked: make([]int, browsers), exact: make([]bool, browsers)}
	for i := range browsers {
		hc := c.client()
		k.browsers = append(k.browsers, hc)
		k.wg.Go(func() {
			for {
				select {
				case <-k.stop:
					return
				default:
				}
				k.count(i, hc)
				time.Sleep(30 * time.Millisecond) // a quick clicker, not a flood
			}
		})
	}
	return k
}

func (k *counters) count(i int, hc *http.Client) {
	resp, err := hc.Get(k.url + "count")
	var body []byte
	if err == nil {
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	now := time.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.answers++
	switch {
	case err != nil:
		k.failures = append(k.failures, now)
		k.problems = append(k.problems, err.Error())
	case resp.StatusCode != http.StatusOK:
		k.failures = append(k.failures, now)
		k.statuses[resp.StatusCode]++
		if m := problemIn.FindSubmatch(body); m != nil {
			k.messages[fmt.Sprintf("%d %s", resp.StatusCode, html.UnescapeString(string(m[1])))]++
		}
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			k.problems = append(k.problems, fmt.Sprintf("status %d (Retry-After %q)", resp.StatusCode, resp.Header.Get("Retry-After")))
		}
	default:
		k.statuses[http.StatusOK]++
		n := -1
		if m := countIn.FindSubmatch(body); m != nil {
			n, _ = strconv.Atoi(string(m[1]))
		}
		if n <= k.acked[i] {
			k.drops = append(k.drops, fmt.Sprintf("browser %d was told %d after %d", i, n, k.acked[i]))
		} else if k.exact[i] && n != k.acked[i]+1 {
			k.twice = append(k.twice, fmt.Sprintf("browser %d was told %d right after %d", i, n, k.acked[i]))
		}
		k.acked[i], k.lastOK[i] = n, now
	}
	k.exact[i] = err == nil && resp.StatusCode == http.StatusOK
}

// problemIn reads a problem page's message: which failure it was.
var problemIn = regexp.MustCompile(`data-testid="problem-message">([^<]*)<`)

// phase is what the browsers saw from one event to their recovery.
type phase struct {
	answers, failed int
	statuses        map[int]int
	messages        map[string]int
	window          time.Duration // from the event to the last failure
	problems, drops []string
	twice           []string
}

func (p phase) String() string {
	s := fmt.Sprintf("%d answers %v, %d failed, the last %.1f s after the event", p.answers, p.statuses, p.failed, p.window.Seconds())
	if len(p.messages) > 0 {
		s += fmt.Sprintf(" (failures by message: %v)", p.messages)
	}
	return s
}

// during resets the record, runs event, and waits (30 s at most) until
// every browser has counted again after the last failure.
func (k *counters) during(t *testing.T, event func()) phase {
	t.Helper()
	k.mu.Lock()
	k.statuses, k.messages, k.problems, k.drops, k.twice, k.failures, k.answers = map[int]int{}, map[string]int{}, nil, nil, nil, nil, 0
	k.mu.Unlock()
	start := time.Now()
	event()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		k.mu.Lock()
		last := start
		if n := len(k.failures); n > 0 {
			last = k.failures[n-1]
		}
		// The last failure was a second ago, and since then every browser
		// has a count acknowledged.
		back := time.Since(last) > time.Second && !slices.ContainsFunc(k.lastOK, func(ok time.Time) bool { return ok.Before(last) })
		p := phase{answers: k.answers, failed: len(k.failures), statuses: maps.Clone(k.statuses), messages: maps.Clone(k.messages),
			problems: slices.Clone(k.problems), drops: slices.Clone(k.drops), twice: slices.Clone(k.twice)}
		if len(k.failures) > 0 {
			p.window = last.Sub(start)
		}
		k.mu.Unlock()
		if back || time.Now().After(deadline) {
			if !back {
				t.Errorf("30 s after the event the browsers still fail: %v", p)
			}
			return p
		}
	}
}

func (k *counters) end() {
	close(k.stop)
	k.wg.Wait()
}

// killRedis kill -9s the Redis server in role ("master" or "replica"); the
// browsers' recovery shows whether it is back.
func (c *cluster) killRedis(role string) string {
	c.t.Helper()
	out, err := redisCLIAt(c.state.Sentinels[1], "sentinel", "get-master-addr-by-name", "mymaster")
	if err != nil {
		c.t.Fatalf("ask a sentinel for the master: %v %s", err, out)
	}
	master := strings.Join(strings.Fields(out), ":")
	i := slices.Index(c.state.Redis, master)
	if i < 0 {
		c.t.Fatalf("the sentinels name %s, not one of %v", master, c.state.Redis)
	}
	if role == "replica" {
		i = 1 - i
	}
	name := fmt.Sprintf("redis-%d", i+1)
	c.kill(name, false)
	return name
}

// kill kill -9s a process of the cluster and, if wait, waits until it runs
// again.
func (c *cluster) kill(name string, wait bool) {
	c.t.Helper()
	c.readState()
	pid := c.state.PIDs[name]
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill -9 %s (pid %d): %v", name, pid, err)
	}
	if !wait {
		return
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c.readState()
		if p := c.state.PIDs[name]; p != 0 && p != pid {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s was not started again within 30 s of kill -9:\n%s", name, c.output())
		}
	}
}

func redisCLIAt(addr string, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// The cluster heals without anyone watching, while browsers count through
// nginx: a rolling restart of every instance costs no request; a kill -9 of
// either Redis server or of a sentinel costs at most a few 503s, and the
// browsers count again within 30 s, with nothing acknowledged lost; a
// planned failover refuses writes only briefly. Then SIGTERM stops every
// process of the cluster, and it starts again, on other ports, after that
// odd number of failovers, with every session and count kept; and once
// more after the cluster program itself is killed.
func TestClusterHealsItself(t *testing.T) {
	c := startCluster(t)
	k := countThroughNginx(c, 3)
	defer func() {
		select {
		case <-k.stop:
		default:
			k.end()
		}
	}()
	time.Sleep(time.Second)

	// No event counts a view twice: a graceful stop drains first, and the
	// count nginx retries elsewhere after a kill -9 of an instance carries
	// the same request id, which is counted once (docs/deploy.md).
	check := func(name string, p phase, wantNoFailure bool) {
		t.Helper()
		t.Logf("%s: %v", name, p)
		if len(p.drops) > 0 {
			t.Errorf("%s: acknowledged counts lost: %s", name, strings.Join(p.drops, "; "))
		}
		if len(p.twice) > 0 {
			t.Errorf("%s: a view counted twice: %s", name, strings.Join(p.twice, "; "))
		}
		if len(p.problems) > 0 {
			kinds := map[string]int{}
			for _, pr := range p.problems {
				kinds[pr]++
			}
			t.Errorf("%s: answers other than 200 or 503 with Retry-After (by kind): %v", name, kinds)
		}
		if wantNoFailure && p.failed > 0 {
			t.Errorf("%s: %d requests failed, want none", name, p.failed)
		}
	}

	check("rolling restart of every instance", k.during(t, func() { t.Log(strings.TrimSpace(c.run("restart-app"))) }), true)
	check("kill -9 of the replica", k.during(t, func() { t.Logf("killed %s", c.killRedis("replica")) }), false)
	check("kill -9 of the master", k.during(t, func() { t.Logf("killed %s", c.killRedis("master")) }), false)
	check("kill -9 of the sentinel the app asks first", k.during(t, func() { c.kill("sentinel-1", true) }), true)
	check("planned failover", k.during(t, func() { t.Log(strings.TrimSpace(c.run("failover"))) }), false)
	check("kill -9 of an instance", k.during(t, func() { c.kill("app2", true) }), false)
	k.end()

	// SIGTERM (as systemd or a script sends) stops every process.
	c.readState()
	master, _ := redisCLIAt(c.state.Sentinels[0], "sentinel", "get-master-addr-by-name", "mymaster")
	masterIndex := slices.Index(c.state.Redis, strings.Join(strings.Fields(master), ":"))
	procs := descendants(c.cmd.Process.Pid) // nginx's worker too, nginx's child
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("the cluster did not stop within 60 s of SIGTERM:\n%s", c.output())
	}
	if c.cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("the cluster exited with %v after SIGTERM", c.cmd.ProcessState)
	}
	for _, p := range procs {
		if p.running() {
			t.Errorf("%v still runs after the cluster stopped", p)
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, "cluster.json")); err == nil {
		t.Error("cluster.json is left behind")
	}

	// It starts again on the same data, on other ports, after an odd number
	// of failovers, and every browser counts on from where it was.
	acked := slices.Clone(k.acked)
	c.start()
	master, _ = redisCLIAt(c.state.Sentinels[0], "sentinel", "get-master-addr-by-name", "mymaster")
	if i := slices.Index(c.state.Redis, strings.Join(strings.Fields(master), ":")); i != masterIndex {
		t.Errorf("after the restart the master is redis-%d, but the sentinels had agreed on redis-%d", i+1, masterIndex+1)
	}
	for i, hc := range k.browsers {
		n, _ := c.count(hc)
		if n <= acked[i] {
			t.Errorf("after the restart browser %d counts %d; it was told %d before", i, n, acked[i])
		}
		acked[i] = n
	}

	// A crash of the cluster program itself takes its processes with it
	// (each child gets SIGKILL when its parent dies), and it starts again
	// on the data they left. Both Redis servers die at once, so what was
	// acknowledged in the last second or two may be gone (appendfsync
	// everysec: Redis answers while a slow fsync holds the write back); the
	// counts from before that are kept.
	time.Sleep(3 * time.Second)
	c.readState()
	// nginx's worker is nginx's child: nginx must stop it (a SIGKILL to
	// the master would leave it running, holding the ports).
	procs = descendants(c.cmd.Process.Pid)
	_ = c.cmd.Process.Kill()
	<-c.exited
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		alive := slices.DeleteFunc(slices.Clone(procs), func(p proc) bool { return !p.running() })
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the killed cluster still run 10 s later: %v", alive)
		}
	}
	c.start()
	for i, hc := range k.browsers {
		if n, _ := c.count(hc); n <= acked[i] {
			t.Errorf("after the crash browser %d counts %d; it was told %d before", i, n, acked[i])
		}
	}
}

package failover

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// Two instances on a Sentinel deployment (one master, one replica, three
// sentinels) while users count through a failover, both the kind an
// operator asks for (SENTINEL FAILOVER) and a crash (kill -9 of the master):
// no 500s, only 503s with Retry-After while there is no master to write to,
// every count acknowledged before or during the failover is still there
// afterwards (but those in flight at the moment of the switch), and counts,
// logins and the live stream work on afterwards without restarting the app.
// Redis runs with its defaults (no min-replicas-to-write): the app itself
// stops writing to the old master when the failover begins, and
// acknowledges a write only once a replica has it (WAIT 1), so counts are
// refused until the new master has a replica again (TestNemesis shows why).
func TestCountsSurviveSentinelFailover(t *testing.T) {
	topo := redistest.StartTopology(t)
	apps := []*apptest.Process{
		apptest.Start(t, bin, "-redis", topo.URL(), "-instance", "a"),
		apptest.Start(t, bin, "-redis", topo.URL(), "-instance", "b"),
	}
	for _, p := range apps {
		if status, body := apptest.Get(t, apptest.Client(t), p.URL+"/readyz"); status != http.StatusOK {
			t.Fatalf("readyz on a Sentinel deployment: %d %s", status, body)
		}
	}

	const users = 4
	clients := make([]*http.Client, users)
	for i := range clients {
		clients[i] = apptest.Client(t)
		form := url.Values{"username": {fmt.Sprintf("sen%d", i)}, "password": {"sentinel-password"}}
		if s := apptest.PostForm(t, clients[i], apps[i%2].URL+"/register", form); s != http.StatusSeeOther {
			t.Fatalf("register: %d", s)
		}
	}
	// The first user's page is open on instance a: its events come through
	// Redis pub/sub, which must follow the master.
	stream := apptest.OpenStream(t, clients[0], apps[0].URL+"/live")
	if stream.Status != http.StatusOK {
		t.Fatalf("GET /live: %d", stream.Status)
	}

	for _, failure := range []struct {
		name string
		fail func() (string, string)
	}{
		// The crash first: the killed master rejoins as a replica within
		// seconds, while one left running after SENTINEL FAILOVER waits
		// for a sentinel to convert it (ten seconds or so).
		{"kill -9 of the master", topo.KillMaster},
		{"SENTINEL FAILOVER", topo.Failover},
	} {
		t.Run(failure.name, func(t *testing.T) {
			before := make([]int, users)
			for i, c := range clients {
				before[i] = countOnce(t, c, apps[0].URL)
			}
			load := startCounting(clients, apps)
			defer load.stop() // on a failure; stopping twice is harmless
			load.waitAcknowledged(t, users, "counts before the failover")
			start := time.Now()
			from, to := failure.fail()
			known := time.Since(start)
			// The new master acknowledges writes once it has a replica
			// again: the killed master restarted, or the old one turned
			// into a replica by a sentinel (about ten seconds). Then
			// counts go on against it.
			for _, node := range topo.Nodes {
				switch {
				case node.Dead():
					topo.Rejoin(node)
				case node.Addr() == from:
					topo.WaitReplica(node)
				}
			}
			load.waitAcknowledged(t, load.acknowledged.Load()+users, "counts after the failover")
			tallies := load.stop()
			t.Logf("master %s -> %s; the sentinels agreed after %v, and it had a replica again after %v", from, to,
				known.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

			var lost int
			for i, c := range clients {
				tl := tallies[i]
				after := countOnce(t, c, apps[1].URL) - 1 // this count is not the load's
				t.Logf("user %d: %d before, %d counts acknowledged, %d refused (503), %d failed; %d after; last 503 %v after the failover began",
					i, before[i], tl.ok, tl.unavailable, tl.failed, after, tl.last503.Sub(start).Round(time.Millisecond))
				if tl.ok == 0 {
					t.Errorf("user %d: no count went through", i)
				}
				for _, b := range tl.bad {
					t.Errorf("user %d: %s", i, b)
				}
				// A count that got no answer (a 503 after a timeout, a failed
				// request) may have been stored: after may exceed before+ok by
				// those. It may fall short by the count in flight at the switch.
				switch want := before[i] + tl.ok; {
				case after < want:
					lost += want - after
				case after > want+tl.unavailable+tl.failed:
					t.Errorf("user %d: %d after, more than %d before + %d acknowledged + %d unanswered", i, after, before[i], tl.ok, tl.unavailable+tl.failed)
				}
			}
			t.Logf("acknowledged counts lost: %d", lost)
			for _, p := range apps {
				if strings.Contains(p.Log(), "status=500") {
					t.Errorf("instance %s logged a 500", p.Addr)
				}
			}
			if lost > users {
				t.Errorf("%d acknowledged counts lost, more than the %d that can be in flight at the switch: the app wrote to the demoted master", lost, users)
			}

			// After the failover, everything works without a restart (each
			// instance checks the master's replicas every half second, so
			// it may take that long to see the one that just synced).
			for _, p := range apps {
				apptest.WaitUntilOK(t, apptest.Client(t), p.URL+"/readyz")
				c := apptest.Client(t)
				name := fmt.Sprintf("new-%s-%d", strings.ReplaceAll(failure.name, " ", "-"), p.PID())
				if s := apptest.PostForm(t, c, p.URL+"/register", url.Values{"username": {name}, "password": {"sentinel-password"}}); s != http.StatusSeeOther {
					t.Errorf("%s: register after the failover: %d", p.Addr, s)
				}
				if s := apptest.PostForm(t, apptest.Client(t), p.URL+"/login", url.Values{"username": {"sen1"}, "password": {"sentinel-password"}}); s != http.StatusSeeOther {
					t.Errorf("%s: login after the failover: %d", p.Addr, s)
				}
			}
			// The open page sees a count made on the other instance, on the
			// new master: its subscription moved there. (One left on an old
			// master that still runs hears nothing until a sentinel turns that
			// into a replica, ten seconds or so later.)
			counted := time.Now()
			n := countOnce(t, clients[0], apps[1].URL)
			for ev := stream.Next("count"); ev.Data != strconv.Itoa(n); ev = stream.Next("count") {
			}
			if took := time.Since(counted); took > 5*time.Second {
				t.Errorf("the open page saw count %d %v after it was made: its subscription stayed on the old master", n, took.Round(time.Millisecond))
			}

		})
	}
}

// countOnce counts once at base and returns the count the page shows.
func countOnce(t *testing.T, c *http.Client, base string) int {
	t.Helper()
	status, body := apptest.WaitUntilOK(t, c, base+"/count")
	n, err := strconv.Atoi(apptest.ViewCount(t, body))
	if err != nil || status != http.StatusOK {
		t.Fatalf("count: %d %v", status, err)
	}
	return n
}

// tally is what one user's counts got during a failover.
type tally struct {
	ok, unavailable, failed int
	last503                 time.Time
	bad                     []string // answers that break the contract
}

type counting struct {
	done         atomic.Bool
	acknowledged atomic.Int64 // counts answered 200, by every client
	wg           sync.WaitGroup
	tallies      []tally
}

// waitAcknowledged waits until n counts in all were answered 200: a
// condition, not a sleep, so a slow machine only makes it wait longer.
func (l *counting) waitAcknowledged(t *testing.T, n int64, what string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); l.acknowledged.Load() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d acknowledged within a minute", what, l.acknowledged.Load(), n)
		}
	}
}

// startCounting has each client count as fast as it can, alternating
// between the instances, until stop.
func startCounting(clients []*http.Client, apps []*apptest.Process) *counting {
	l := &counting{tallies: make([]tally, len(clients))}
	for i, c := range clients {
		l.wg.Go(func() {
			tl := &l.tallies[i]
			for n := 0; !l.done.Load(); n++ {
				resp, err := c.Get(apps[n%len(apps)].URL + "/count")
				if err != nil {
					tl.failed++
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusOK:
					tl.ok++
					l.acknowledged.Add(1)
				case resp.StatusCode == http.StatusServiceUnavailable:
					tl.unavailable++
					tl.last503 = time.Now()
					if resp.Header.Get("Retry-After") == "" {
						tl.bad = append(tl.bad, "503 without Retry-After")
					}
					time.Sleep(50 * time.Millisecond) // a browser would wait longer
				default:
					tl.bad = append(tl.bad, fmt.Sprintf("%d: %.200s", resp.StatusCode, body))
				}
			}
		})
	}
	return l
}

func (l *counting) stop() []tally {
	l.done.Store(true)
	l.wg.Wait()
	return l.tallies
}

package process

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// soakConfig is the soak's size: SOAK=1 runs the full soak (`go tool task
// soak`), sized by SOAK_DURATION, SOAK_CONNS and SOAK_SESSIONS; otherwise a
// short smoke run checks correctness only (growth needs time to show).
type soakConfig struct {
	duration    time.Duration
	conns       int
	sessions    int
	checkGrowth bool
	heapSlack   float64 // fraction the live heap may grow from middle to end
}

// idleGoroutineSlack is how many more goroutines the idle app may have after
// the load than before it (client connections it is still closing, say).
const idleGoroutineSlack = 10

func loadSoakConfig(t *testing.T) soakConfig {
	if os.Getenv("SOAK") == "" {
		if testing.Short() {
			t.Skip("smoke soak skipped in -short mode")
		}
		return soakConfig{duration: 3 * time.Second, conns: 16, sessions: 100}
	}
	cfg := soakConfig{duration: time.Minute, conns: 100, sessions: 1000, checkGrowth: true, heapSlack: 0.25}
	if d, err := time.ParseDuration(os.Getenv("SOAK_DURATION")); err == nil && d > 0 {
		cfg.duration = d
	}
	if n, err := strconv.Atoi(os.Getenv("SOAK_CONNS")); err == nil && n > 0 {
		cfg.conns = n
	}
	if n, err := strconv.Atoi(os.Getenv("SOAK_SESSIONS")); err == nil && n > 0 {
		cfg.sessions = n
	}
	return cfg
}

// soakSession is one browser of the soak: its cookie and every count it
// was shown.
type soakSession struct {
	cookie string
	mu     sync.Mutex
	shown  []int // the counts its 200 responses showed, first included
}

var soakViews = regexp.MustCompile(`data-testid="view-count"[^>]*>(\d+)<`)

// runtimeFigures is what the app's debug listener says about itself.
type runtimeFigures struct{ goroutines, heapLive int }

func (f runtimeFigures) String() string {
	return fmt.Sprintf("%d goroutines, %.1f MiB live heap", f.goroutines, float64(f.heapLive)/(1<<20))
}

var (
	goroutineTotal = regexp.MustCompile(`goroutine profile: total (\d+)`)
	heapAlloc      = regexp.MustCompile(`# HeapAlloc = (\d+)`)
)

// measure reads goroutines and the live heap (after a GC) from pprof.
func measure(t *testing.T, debug string) runtimeFigures {
	t.Helper()
	g := goroutineTotal.FindStringSubmatch(apptest.DebugGet(t, debug, "/debug/pprof/goroutine?debug=1"))
	h := heapAlloc.FindStringSubmatch(apptest.DebugGet(t, debug, "/debug/pprof/heap?gc=1&debug=1"))
	if g == nil || h == nil {
		t.Fatal("cannot read goroutines or heap from the debug listener")
	}
	var f runtimeFigures
	f.goroutines, _ = strconv.Atoi(g[1])
	f.heapLive, _ = strconv.Atoi(h[1])
	return f
}

// The soak: many connections count in many sessions at once, on loopback,
// against the real binary and its own Redis. It ends with no error, every
// session's count exactly the number of 200s it got (each number shown
// once), Redis agreeing, and no growth in goroutines or live heap between
// the middle and the end.
func TestSoak(t *testing.T) {
	cfg := loadSoakConfig(t)
	rs := redistest.Start(t)
	// Its sessions all come from loopback: no limit on new sessions per address.
	p := apptest.Start(t, bin, "-redis", rs.URL(), "-debug-addr", "127.0.0.1:0", "-instance", "soak", "-new-sessions", "0")
	debug := p.DebugURL()

	tr := &http.Transport{MaxIdleConns: cfg.conns, MaxIdleConnsPerHost: cfg.conns, MaxConnsPerHost: cfg.conns}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(tr.CloseIdleConnections)

	var (
		errs     atomic.Int64
		errMu    sync.Mutex
		errFirst []string
	)
	fail := func(format string, args ...any) {
		if errs.Add(1) <= 10 {
			errMu.Lock()
			errFirst = append(errFirst, fmt.Sprintf(format, args...))
			errMu.Unlock()
		}
	}
	// do sends one request and returns its body; any surprise is an error.
	do := func(path, cookie string, htmx bool) (string, http.Header, bool) {
		req, _ := http.NewRequest(http.MethodGet, p.URL+path, nil)
		if cookie != "" {
			req.Header.Set("Cookie", "session="+cookie)
		}
		if htmx {
			req.Header.Set("HX-Request", "true")
			req.Header.Set("HX-Target", "view-count")
		}
		resp, err := client.Do(req)
		if err != nil {
			fail("GET %s: %v", path, err)
			return "", nil, false
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			fail("GET %s: %d %v", path, resp.StatusCode, err)
			return "", nil, false
		}
		if cookie != "" && resp.Header.Get("Set-Cookie") != "" {
			fail("GET %s set a cookie on an existing session", path)
		}
		return string(b), resp.Header, true
	}
	count := func(s *soakSession, htmx bool) {
		body, _, ok := do("/count", s.cookie, htmx)
		if !ok {
			return
		}
		m := soakViews.FindStringSubmatch(body)
		if m == nil {
			fail("count page without a count")
			return
		}
		n, _ := strconv.Atoi(m[1])
		s.mu.Lock()
		s.shown = append(s.shown, n)
		s.mu.Unlock()
	}

	// The sessions: each browser's first count creates its session.
	sessions := make([]*soakSession, cfg.sessions)
	for i := range sessions {
		body, h, ok := do("/count", "", false)
		if !ok || !strings.Contains(body, `data-testid="view-count"`) {
			t.Fatalf("creating session %d failed: %v", i, errFirst)
		}
		s := &soakSession{shown: []int{1}}
		for _, ck := range (&http.Response{Header: h}).Cookies() {
			if ck.Name == "session" {
				s.cookie = ck.Value
			}
		}
		if s.cookie == "" {
			t.Fatalf("session %d: no cookie", i)
		}
		sessions[i] = s
	}
	tr.CloseIdleConnections()
	idleBefore := measure(t, debug)

	// The load: every connection picks a random session and mostly counts
	// (plain or htmx), sometimes only reads (home, the Redis page).
	var requests, reads atomic.Int64
	latencies := make([][]time.Duration, cfg.conns)
	start := time.Now()
	stop := start.Add(cfg.duration)
	var wg sync.WaitGroup
	for w := range cfg.conns {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for t0 := time.Now(); t0.Before(stop); t0 = time.Now() {
				s := sessions[rng.IntN(len(sessions))]
				switch k := rng.IntN(10); {
				case k < 8:
					count(s, k%2 == 0)
				case k == 8:
					do("/", s.cookie, false)
					reads.Add(1)
				default:
					do("/redis", s.cookie, false)
					reads.Add(1)
				}
				requests.Add(1)
				latencies[w] = append(latencies[w], time.Since(t0))
			}
		})
	}
	time.Sleep(cfg.duration / 2)
	mid := measure(t, debug)
	time.Sleep(time.Until(stop) - cfg.duration/20)
	end := measure(t, debug)
	wg.Wait()
	elapsed := time.Since(start)
	tr.CloseIdleConnections()
	time.Sleep(200 * time.Millisecond) // let the server see its connections close
	idleAfter := measure(t, debug)

	// Every session's count: the numbers it was shown are exactly 1..n, and
	// Redis holds n.
	wrong := 0
	var total int
	for i := 0; i < len(sessions); i += 100 {
		batch := sessions[i:min(i+100, len(sessions))]
		args := []string{"MGET"}
		for _, s := range batch {
			args = append(args, "sess:"+s.cookie)
		}
		values := strings.Split(rs.MustDo(args...), "\n")
		for j, s := range batch {
			var stored struct {
				Values struct {
					Views int `json:"views"`
				} `json:"values"`
			}
			_ = json.Unmarshal([]byte(values[j]), &stored)
			slices.Sort(s.shown)
			exact := stored.Values.Views == len(s.shown)
			for k, n := range s.shown {
				exact = exact && n == k+1
			}
			if !exact {
				wrong++
				if wrong <= 5 {
					t.Errorf("session %d: %d counts answered 200, Redis holds %d, shown %v",
						i+j, len(s.shown), stored.Values.Views, s.shown)
				}
			}
			total += len(s.shown)
		}
	}

	t.Logf("soak: %v at %d connections over %d sessions (loopback, own Redis and app process)",
		elapsed.Round(time.Millisecond), cfg.conns, cfg.sessions)
	t.Logf("  requests: %d (%.0f/s), counts answered 200: %d, reads: %d, errors: %d",
		requests.Load(), float64(requests.Load())/elapsed.Seconds(), total-cfg.sessions, reads.Load(), errs.Load())
	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) > 0 {
		q := func(f float64) time.Duration { return all[int(f*float64(len(all)-1))].Round(10 * time.Microsecond) }
		t.Logf("  latency: p50 %v, p99 %v, max %v", q(0.5), q(0.99), all[len(all)-1].Round(10*time.Microsecond))
	}
	t.Logf("  sessions whose count is not exactly right: %d of %d", wrong, cfg.sessions)
	t.Logf("  app, idle before: %v", idleBefore)
	t.Logf("  app, middle:      %v", mid)
	t.Logf("  app, end:         %v", end)
	t.Logf("  app, idle after:  %v", idleAfter)

	if errs.Load() > 0 {
		t.Errorf("%d errors; first: %v", errs.Load(), errFirst)
	}
	if !cfg.checkGrowth {
		return
	}
	// Under load each connection may or may not have a request in flight
	// (and net/http a goroutine for it); a leak per request would add
	// thousands between the middle and the end.
	if end.goroutines > mid.goroutines+cfg.conns+idleGoroutineSlack {
		t.Errorf("goroutines grew from %d (middle) to %d (end)", mid.goroutines, end.goroutines)
	}
	if idleAfter.goroutines > idleBefore.goroutines+idleGoroutineSlack {
		t.Errorf("goroutines idle: %d before the load, %d after", idleBefore.goroutines, idleAfter.goroutines)
	}
	if float64(end.heapLive) > float64(mid.heapLive)*(1+cfg.heapSlack)+(1<<20) {
		t.Errorf("live heap grew from %d (middle) to %d (end)", mid.heapLive, end.heapLive)
	}
}

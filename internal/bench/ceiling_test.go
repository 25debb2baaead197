package bench

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessionlab/sessionlab/handlers"
	"github.com/sessionlab/sessionlab/internal/redisconn"
)

// The ceiling: what this machine allows at all. The same wrk load goes to
// servers that do less than the app does: one that writes a page of
// /profile's size and nothing else, then that plus one and two Redis GETs
// through the pool redisstore uses. Beside each route's cells runs a server
// with the route's round trips and a page of the route's own size. Each sends its page in one write
// system call, as the app does (handlers.OneWriteListener). Targets above those figures cannot be
// met by any version of the app on this machine, and the gap between them
// and the app is what the app's own code costs.
//
// The servers are this test binary run again (TestMain), so their CPU is
// measured apart from the benchmark's.

const ceilingEnv = "BENCH_CEILING_SERVER" // addr,redisURL,key,pageBytes,roundTrips

func TestMain(m *testing.M) {
	if spec := os.Getenv(ceilingEnv); spec != "" {
		log.Fatal(serveCeiling(spec))
	}
	os.Exit(m.Run())
}

func serveCeiling(spec string) error {
	f := strings.Split(spec, ",")
	if len(f) != 5 {
		return fmt.Errorf("%s: want addr,redisURL,key,pageBytes,roundTrips, got %q", ceilingEnv, spec)
	}
	addr, redisURL, key := f[0], f[1], f[2]
	size, err1 := strconv.Atoi(f[3])
	trips, err2 := strconv.Atoi(f[4])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("%s: bad number in %q", ceilingEnv, spec)
	}
	page := []byte(strings.Repeat("x", size))
	cfg := redisconn.Config{URL: redisURL}
	rdb, err := redisconn.Connect(context.Background(), cfg)
	if err != nil {
		return err
	}
	pool, err := redisconn.NewPool(cfg, rdb)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if trips > 0 {
			c := pool.Get()
			for range trips {
				if _, err := redis.Bytes(c.Do("GET", key)); err != nil {
					c.Close()
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
					return
				}
			}
			c.Close()
		}
		// In one write system call, as the app sends a page: a page over
		// net/http's 4 KB buffer would otherwise take two.
		handlers.OneWrite(r, w, func() {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Content-Length", strconv.Itoa(len(page)))
			_, _ = w.Write(page)
		})
	})}
	return srv.Serve(handlers.OneWriteListener(srv, ln))
}

type ceilingRow struct {
	name  string
	trips int // Redis round trips per request; -1: redis-benchmark
	c     cell
}

// ceilingServer is one ceiling server, running until stop.
type ceilingServer struct {
	name      string
	trips     int
	pageBytes int
	url       string
	cmd       *exec.Cmd
}

// startCeiling starts a ceiling server that makes trips GETs of the app's
// session key and writes a page of pageBytes.
func startCeiling(tb testing.TB, app *target, pageBytes, trips int) *ceilingServer {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	key := app.sessionKey(strings.TrimPrefix(app.cookie, app.cookieName+"="))
	name := fmt.Sprintf("net/http, a %d B page in one write", pageBytes)
	if trips > 0 {
		name += fmt.Sprintf(", + %d GET of the session key (redigo pool)", trips)
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePort(tb))
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%s,%d,%d", ceilingEnv, addr, "redis://"+app.redis.addr, key, pageBytes, trips))
	logf, _ := os.Create(filepath.Join(tb.TempDir(), "ceiling.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start ceiling server: %v", err)
	}
	s := &ceilingServer{name: name, trips: trips, pageBytes: pageBytes, url: "http://" + addr + "/", cmd: cmd}
	tb.Cleanup(s.stop)
	if err := waitHTTP(s.url, logf.Name()); err != nil {
		tb.Fatal(err)
	}
	return s
}

func (s *ceilingServer) run(tb testing.TB, cfg config, wrk, script string, app *target, conns int) (cell, error) {
	return runWrk(tb, wrk, script, wrkLoad{url: s.url, conns: conns, threads: cfg.threads, duration: cfg.duration},
		&proc{pid: s.cmd.Process.Pid}, app.redisProc)
}

func (s *ceilingServer) stop() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// runCeiling measures the ceiling servers and Redis alone at c conns, one
// after another, after the routes' cells. (The targets compare each route
// with the ceiling cells run alongside it: see BenchmarkLoad.)
func runCeiling(tb testing.TB, out *os.File, cfg config, wrk, script string, app *target, servers []*ceilingServer, conns int) []ceilingRow {
	tb.Helper()
	fmt.Fprintln(out)
	fmt.Fprintf(out, "## Ceiling: the same wrk load (c=%d) on servers that do less than the app, one after another after the routes' cells; nothing can beat these here\n", conns)
	fmt.Fprintf(out, "%-60s %9s %8s %8s %6s %s\n", "server", "req/s", "p50", "p99", "errors", "cpu srv/redis/wrk/other")
	var rows []ceilingRow
	for _, s := range servers {
		time.Sleep(cfg.pause)
		c, err := s.run(tb, cfg, wrk, script, app, conns)
		if err != nil {
			tb.Fatal(err)
		}
		rows = append(rows, ceilingRow{name: s.name, trips: s.trips, c: c})
		printCeiling(out, s.name, c)
	}
	if c, ok := redisBenchmark(tb, cfg, app, conns); ok {
		rows = append(rows, ceilingRow{name: "Redis alone: redis-benchmark GET", trips: -1, c: c})
		printCeiling(out, "Redis alone: redis-benchmark GET (its own client)", c)
	}
	return rows
}

func printCeiling(out *os.File, name string, c cell) {
	p50, p99 := fmtDur(c.p50), fmtDur(c.p99)
	if c.p99 == 0 {
		p50, p99 = "-", "-"
	}
	fmt.Fprintf(out, "%-60s %9.0f %8s %8s %6d %3.0f/%3.0f/%3.0f/%3.0f\n", name, c.rps(), p50, p99, c.errors(),
		c.cpu.server, c.cpu.redis, c.cpu.wrk, c.cpu.other)
}

// redisBenchmark runs redis-benchmark's GET against the app's Redis: the
// rate Redis itself manages on this machine, one command per round trip.
func redisBenchmark(tb testing.TB, cfg config, app *target, conns int) (cell, bool) {
	tb.Helper()
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return cell{}, false
	}
	host, port, err := net.SplitHostPort(app.redis.addr)
	if err != nil {
		return cell{}, false
	}
	n := int(cfg.duration.Seconds() * 100_000)
	cmd := exec.Command(bin, "-h", host, "-p", port, "-c", strconv.Itoa(conns), "-n", strconv.Itoa(n),
		"-t", "get", "-d", "200", "--csv")
	before := takeCPU(nil, app.redisProc)
	t0 := time.Now()
	outb, err := cmd.Output()
	elapsed := time.Since(t0)
	after := takeCPU(nil, app.redisProc)
	if err != nil {
		tb.Logf("redis-benchmark: %v", err)
		return cell{}, false
	}
	c := cell{requests: int64(n), elapsed: elapsed}
	// --csv: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
	for line := range strings.Lines(string(outb)) {
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) >= 7 && strings.Trim(f[0], `"`) == "GET" {
			ms := func(s string) time.Duration {
				v, _ := strconv.ParseFloat(strings.Trim(s, `"`), 64)
				return time.Duration(v * float64(time.Millisecond))
			}
			c.p50, c.p99 = ms(f[4]), ms(f[6])
		}
	}
	c.cpu = after.since(before, cmd.ProcessState) // redis-benchmark's CPU goes in the wrk column
	return c, true
}

// ceilingFor is the ceiling row for a number of Redis round trips.
func ceilingFor(rows []ceilingRow, trips int) (cell, bool) {
	for _, r := range rows {
		if r.trips == trips {
			return r.c, true
		}
	}
	return cell{}, false
}

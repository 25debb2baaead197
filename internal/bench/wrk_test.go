package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wrkScript makes wrk print one machine-readable line instead of its report,
// so nothing depends on wrk's human formatting. Only done() is defined, so
// wrk keeps its fast path (no per-request Lua).
const wrkScript = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%.0f duration_us=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f status=%.0f connect=%.0f read=%.0f write=%.0f timeout=%.0f\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end
`

// cell is one wrk run: one server, one route, one concurrency.
type cell struct {
	requests   int64
	elapsed    time.Duration
	p50, p99   time.Duration
	non2xx     int64 // status >= 400 (wrk counts 3xx as success)
	sockErrs   int64 // connect, read, write, timeout
	cpu        cpuShare
	peakRSSKiB int64 // VmRSS sampled every 100 ms during the run (0: not known)
	keysDelta  int64 // DBSIZE after - before (when the Redis is known)
}

func (c cell) rps() float64 {
	if c.elapsed <= 0 {
		return 0
	}
	return float64(c.requests) / c.elapsed.Seconds()
}

func (c cell) errors() int64 { return c.non2xx + c.sockErrs }

// cpuPerRequest is the server's CPU time per request: unlike req/s it
// barely moves when other work shares the machine, so it compares builds.
func (c cell) cpuPerRequest() string {
	if c.requests == 0 || c.cpu.serverSecs == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", c.cpu.serverSecs*1e6/float64(c.requests))
}

// wrkLoad describes one run.
type wrkLoad struct {
	url      string
	cookie   string // "name=value", or "" for none
	conns    int
	threads  int
	duration time.Duration
}

// mustWrk finds wrk or fails with the install hint.
func mustWrk(tb testing.TB) string {
	tb.Helper()
	p, err := exec.LookPath("wrk")
	if err != nil {
		tb.Fatalf("wrk is not on PATH: `apt-get install wrk` (go tool task bench installs it)")
	}
	return p
}

func writeScript(tb testing.TB) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "report.lua")
	if err := os.WriteFile(p, []byte(wrkScript), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// runWrk runs wrk once while sampling the server's CPU and RSS.
func runWrk(tb testing.TB, wrk, script string, l wrkLoad, srv, redis *proc) (cell, error) {
	tb.Helper()
	threads := min(l.threads, l.conns)
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(l.conns),
		"-d", fmt.Sprintf("%ds", max(1, int(l.duration.Round(time.Second).Seconds()))), "--timeout", "2s", "-s", script}
	if l.cookie != "" {
		args = append(args, "-H", "Cookie: "+l.cookie)
	}
	args = append(args, l.url)
	cmd := exec.Command(wrk, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var peak int64
	if srv != nil && srv.pid > 0 {
		wg.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				if kib := srv.rssKiB(); kib > peak {
					peak = kib
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		})
	}
	before := takeCPU(srv, redis)
	err := cmd.Run()
	after := takeCPU(srv, redis)
	close(stop)
	wg.Wait()
	if err != nil {
		return cell{}, fmt.Errorf("wrk %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	c, err := parseWrk(out.String())
	if err != nil {
		return cell{}, fmt.Errorf("wrk %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	c.cpu = after.since(before, cmd.ProcessState)
	c.peakRSSKiB = peak
	return c, nil
}

func parseWrk(out string) (cell, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "BENCH ") {
			continue
		}
		f := map[string]float64{}
		for _, kv := range strings.Fields(line)[1:] {
			k, v, _ := strings.Cut(kv, "=")
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return cell{}, fmt.Errorf("bad field %q", kv)
			}
			f[k] = x
		}
		us := func(k string) time.Duration { return time.Duration(f[k] * float64(time.Microsecond)) }
		return cell{
			requests: int64(f["requests"]),
			elapsed:  us("duration_us"),
			p50:      us("p50_us"),
			p99:      us("p99_us"),
			non2xx:   int64(f["status"]),
			sockErrs: int64(f["connect"] + f["read"] + f["write"] + f["timeout"]),
		}, nil
	}
	return cell{}, fmt.Errorf("no BENCH line in wrk output")
}

// proc is a process whose CPU and memory the benchmark watches.
type proc struct{ pid int }

func (p *proc) ticks() int64 {
	if p == nil || p.pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+2:]) // field 3 (state) is f[0]; utime is field 14, stime 15
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st
}

// status reads one "Key:   N kB" line of /proc/<pid>/status, in KiB.
func (p *proc) status(key string) int64 {
	if p == nil || p.pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func (p *proc) rssKiB() int64 { return p.status("VmRSS") }
func (p *proc) hwmKiB() int64 { return p.status("VmHWM") }

// cpuShare is where the machine's CPU went during one run, in percent of
// one core (a 2-core machine is 200 % busy when saturated).
type cpuShare struct {
	busy, server, redis, wrk, other float64
	serverSecs                      float64 // the server's CPU time
}

type cpuSnap struct {
	at                 time.Time
	busy, total        int64
	server, redisTicks int64
}

const clkTck = 100 // USER_HZ on Linux

func takeCPU(srv, redis *proc) cpuSnap {
	s := cpuSnap{at: time.Now(), server: srv.ticks(), redisTicks: redis.ticks()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var v [9]int64
	for i := 1; i < len(f) && i < 9; i++ {
		v[i], _ = strconv.ParseInt(f[i], 10, 64)
	}
	s.busy = v[1] + v[2] + v[3] + v[6] + v[7] + v[8]
	s.total = s.busy + v[4] + v[5]
	return s
}

func (a cpuSnap) since(b cpuSnap, wrk *os.ProcessState) cpuShare {
	wall := a.at.Sub(b.at).Seconds()
	if wall <= 0 {
		return cpuShare{}
	}
	pct := func(ticks int64) float64 { return 100 * float64(ticks) / clkTck / wall }
	c := cpuShare{busy: pct(a.busy - b.busy), server: pct(a.server - b.server), redis: pct(a.redisTicks - b.redisTicks),
		serverSecs: float64(a.server-b.server) / clkTck}
	if wrk != nil {
		c.wrk = 100 * (wrk.UserTime() + wrk.SystemTime()).Seconds() / wall
	}
	c.other = max(0, c.busy-c.server-c.redis-c.wrk)
	return c
}

// otherLoad samples the machine for a moment with nothing of ours running:
// the CPU other people's work takes, in percent of one core.
func otherLoad(d time.Duration) float64 {
	a := takeCPU(nil, nil)
	time.Sleep(d)
	return takeCPU(nil, nil).since(a, nil).busy
}

package sessions

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// What the count scripts cost Redis per call, measured on Redis's side:
// redis-µs/op is EVALSHA's usec over its calls (INFO commandstats),
// redis-cpu-µs/op the server's CPU (INFO cpu), and, with REDIS_CALLGRIND=1
// and a redis-server on PATH that execs valgrind --tool=callgrind
// /usr/bin/redis-server "$@", redis-instr/op its instructions, which the
// machine's load does not move (the first two it does). E.g.:
//
//	REDIS_CALLGRIND=1 PATH=$wrapperdir:$PATH go test -run '^$' -bench ScriptRedis -benchtime 300x ./internal/sessions/

func evalshaStats(b *testing.B, rs *redistest.Server) (calls, usec float64) {
	b.Helper()
	info := rs.MustDo("INFO", "commandstats")
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				calls, _ = strconv.ParseFloat(v, 64)
			case "usec":
				usec, _ = strconv.ParseFloat(v, 64)
			}
		}
	}
	return calls, usec
}

// redisCPU is the server's CPU time so far, in µs (INFO cpu).
func redisCPU(b *testing.B, rs *redistest.Server) float64 {
	b.Helper()
	var sum float64
	for line := range strings.Lines(rs.MustDo("INFO", "cpu")) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f * 1e6
		}
	}
	return sum
}

func reportRedisTime(b *testing.B, rs *redistest.Server, run func(i int)) {
	b.Helper()
	run(-1) // loads the script
	c0, u0 := evalshaStats(b, rs)
	cpu0 := redisCPU(b, rs)
	perf := startCallgrind(b, rs)
	i := 0
	for b.Loop() {
		run(i)
		i++
	}
	if perf != nil {
		b.ReportMetric(perf()/float64(b.N), "redis-instr/op")
	}
	cpu1 := redisCPU(b, rs)
	c1, u1 := evalshaStats(b, rs)
	if c1-c0 != float64(b.N) {
		b.Fatalf("%v EVALSHA calls for %d counts", c1-c0, b.N)
	}
	b.ReportMetric((u1-u0)/(c1-c0), "redis-µs/op")
	b.ReportMetric((cpu1-cpu0)/float64(b.N), "redis-cpu-µs/op")
}

// startCallgrind counts the server's instructions from now (REDIS_CALLGRIND,
// above); the function it returns reads the count.
func startCallgrind(b *testing.B, rs *redistest.Server) func() float64 {
	if os.Getenv("REDIS_CALLGRIND") == "" {
		return nil
	}
	var pid string
	for line := range strings.Lines(rs.MustDo("INFO", "server")) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid = v
		}
	}
	if out, err := exec.Command("callgrind_control", "-z", pid).CombinedOutput(); err != nil {
		b.Fatalf("callgrind_control -z: %v\n%s", err, out)
	}
	return func() float64 {
		if d := os.Getenv("REDIS_CALLGRIND_DUMP"); d != "" { // a profile for callgrind_annotate
			_ = exec.Command("callgrind_control", "--dump="+d, pid).Run()
		}
		out, err := exec.Command("callgrind_control", "-e", pid).CombinedOutput()
		if err != nil {
			b.Fatalf("callgrind_control -e: %v\n%s", err, out)
		}
		// "Totals: Ir", then "Th 1 8,255,130" per thread
		var sum float64
		for line := range strings.Lines(string(out)) {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "Th" {
				n, _ := strconv.ParseFloat(strings.ReplaceAll(f[2], ",", ""), 64)
				sum += n
			}
		}
		if sum > 0 {
			return sum
		}
		b.Fatalf("no total in callgrind_control -e:\n%s", out)
		return 0
	}
}

// fillAddress lists MaxBrowsers others at addr, as for a class behind one
// NAT and for the load benchmark's no-cookie rows.
func fillAddress(b *testing.B, o *Ops, addr string) {
	b.Helper()
	for i := range MaxBrowsers {
		if _, _, err := o.NewBrowser(context.Background(), fmt.Sprintf("other-%d", i), 1,
			Visit{Addr: addr, Device: "Firefox on Linux"}, throttle.Step{}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCountScriptRedis(b *testing.B) {
	for _, others := range []int{0, MaxBrowsers} {
		b.Run(fmt.Sprintf("others=%d", others), func(b *testing.B) { benchCount(b, others) })
	}
}

func benchCount(b *testing.B, others int) {
	rs := redistest.Start(b, "--appendonly", "no")
	o := NewOps(rs.Client(b))
	o.Instance = "vm:8080"
	ctx := context.Background()
	if others > 0 {
		fillAddress(b, o, "loopback")
	}
	now := time.Now()
	raw, err := (Codec{}).Encode(now.Add(time.Hour), map[string]any{
		KeyUser:   User{Username: "alice", Role: "student", Gen: "4874ab3d7a607d6f"},
		KeyViews:  3,
		KeySeen:   now,
		KeyOrigin: Origin{Process: "6d5dcf", Instance: "vm:8080", At: now},
	})
	if err != nil {
		b.Fatal(err)
	}
	rs.MustDo("SET", Key("alice-token"), string(raw), "EX", "3600")
	rs.MustDo("HSET", IndexKey("alice"), ID("alice-token"), fmt.Sprintf(
		`{"token":"alice-token","created":%d,"last_seen":%[1]d,"ip":"127.0.0.1","user_agent":"Mozilla/5.0","instance":"vm:8080"}`, now.UnixMilli()))
	v := Visit{Addr: "loopback", Device: "Chrome on Linux", LoggedIn: true, Process: "6d5dcf"}
	reportRedisTime(b, rs, func(int) {
		if _, _, _, err := o.IncrViews(ctx, "alice-token", "alice", v); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkNewBrowserScriptRedis(b *testing.B) {
	rs := redistest.Start(b, "--appendonly", "no")
	o := NewOps(rs.Client(b))
	ctx := context.Background()
	fillAddress(b, o, "loopback")
	limit := throttle.Step{Key: "newsession:addr:127.0.0.1", Limit: throttle.Limit{Max: 1 << 30, Window: 10 * time.Minute}}
	v := Visit{Addr: "loopback", Device: "Chrome on Linux", Process: "6d5dcf"}
	reportRedisTime(b, rs, func(i int) {
		if _, wait, err := o.NewBrowser(ctx, "new-"+strconv.Itoa(i), 1, v, limit, nil); err != nil || wait > 0 {
			b.Fatal(wait, err)
		}
	})
}

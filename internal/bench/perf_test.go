package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"debug/elf"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BENCH_PERF=dir records the app and the ceiling server alongside it with
// `perf record` during the c=50 cells and prints where each one's CPU went.
// The Go profiler (BENCH_CPUPROFILE) shows a system call as one frame and
// profiles the app alone; perf also samples the kernel's side of each call,
// and the ceiling server the same way, so the two can be set side by side.

// perfHz is perf's sampling rate per CPU (cpu-clock: this VM has no
// hardware counters).
const perfHz = 2000

// The parts of a server's CPU, in the order printed.
var perfParts = []string{
	"the handler's own code",
	"kernel: write",
	"kernel: read",
	"net/http outside the handler",
	"the Redis client's goroutines",
	"allocation",
	"GC",
	"scheduler (runtime and kernel)",
	"kernel: other",
	"other",
}

// perfRecording is one `perf record` of a process, running.
type perfRecording struct {
	cmd  *exec.Cmd
	file string
	out  bytes.Buffer
}

// perfAttach is how long perf is given to attach before the load starts:
// perf takes a few hundred milliseconds to start, and a sample missed would
// make the CPU per request look smaller. It records perfAttach after the
// load too, so the window holds the whole load.
const perfAttach = time.Second

// startPerf records pid while a load of length d runs (it returns when the
// load may start); nil (after saying why) when perf cannot.
func startPerf(tb testing.TB, dir, name string, pid int, d time.Duration) *perfRecording {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Logf("BENCH_PERF: %v", err)
		return nil
	}
	// perf names frames from the ELF symbol table, which go test leaves out
	// of the test binary that serves the ceiling.
	if f, err := elf.Open(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
		if _, err := f.Symbols(); err != nil {
			tb.Logf("BENCH_PERF: %s: its binary has no symbol table, so its samples count as other (run go test with -ldflags=-s=false, as go tool task bench does)", name)
		}
		f.Close()
	}
	r := &perfRecording{file: filepath.Join(dir, "perf-"+fileName(name)+".data")}
	r.cmd = exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-F", strconv.Itoa(perfHz), "-g",
		"-p", strconv.Itoa(pid), "-o", r.file, "--", "sleep", strconv.FormatFloat((d+2*perfAttach).Seconds(), 'f', 1, 64))
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		tb.Logf("BENCH_PERF: perf record: %v (apt-get install linux-perf)", err)
		return nil
	}
	time.Sleep(perfAttach)
	return r
}

// split waits for the recording and returns µs of CPU per request in each
// of perfParts, over the requests of the load it held.
func (r *perfRecording) split(requests int64) (map[string]float64, error) {
	if err := r.cmd.Wait(); err != nil {
		return nil, fmt.Errorf("perf record: %v: %s", err, r.out.String())
	}
	script := exec.Command("perf", "script", "-F", "ip,sym", "-i", r.file)
	out, err := script.Output()
	if err != nil {
		return nil, fmt.Errorf("perf script: %v", err)
	}
	counts := perfCounts(out)
	us := make(map[string]float64, len(counts))
	for part, n := range counts {
		us[part] = float64(n) / perfHz / float64(max(requests, 1)) * 1e6
	}
	return us, nil
}

// perfCounts sorts the samples of `perf script -F ip,sym` (one block of
// frames per sample, innermost first) into perfParts.
func perfCounts(script []byte) map[string]int {
	counts := map[string]int{}
	var frames []string
	kernel, first := false, true
	flush := func() {
		if len(frames) > 0 {
			counts[perfPart(kernel, frames)]++
		}
		frames, kernel, first = frames[:0], false, true
	}
	sc := bufio.NewScanner(bytes.NewReader(script))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			flush()
			continue
		}
		if first {
			kernel, first = strings.HasPrefix(f[0], "ffff"), false // the sample was taken in the kernel
		}
		if strings.HasPrefix(f[0], "ffff") || len(f) < 2 {
			continue // only the user-space frames say which part it was
		}
		sym, _, _ := strings.Cut(f[1], "+0x")
		frames = append(frames, sym)
	}
	flush()
	return counts
}

// perfPart names the part of a sample: frames are its user-space stack,
// innermost first; kernel says the sample fell in the kernel under them.
func perfPart(kernel bool, frames []string) string {
	has := func(names ...string) bool {
		for _, f := range frames {
			for _, n := range names {
				if strings.HasPrefix(f, n) {
					return true
				}
			}
		}
		return false
	}
	switch {
	case has("runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcAssistAlloc"):
		return "GC"
	case kernel && has("syscall.write", "internal/poll.(*FD).Write"):
		return "kernel: write"
	case kernel && has("syscall.read", "internal/poll.(*FD).Read"):
		return "kernel: read"
	case has("runtime.schedule", "runtime.findRunnable", "runtime.mcall", "runtime.park_m", "runtime.sysmon",
		"runtime.stopm", "runtime.startm", "runtime.futex", "runtime.usleep", "runtime.osyield", "runtime.netpoll"):
		return "scheduler (runtime and kernel)"
	case kernel:
		return "kernel: other"
	case has("runtime.mallocgc"):
		return "allocation"
	case has("net/http.serverHandler.ServeHTTP"):
		return "the handler's own code"
	case has("net/http."):
		return "net/http outside the handler"
	case has("github.com/redis/rueidis."):
		return "the Redis client's goroutines"
	}
	return "other"
}

// perfColumn is one recorded server's split, printed as a column.
type perfColumn struct {
	name  string
	order int // the route's place, the app before its ceiling
	us    map[string]float64
}

func printPerf(out *os.File, cols []perfColumn) {
	if len(cols) == 0 {
		return
	}
	slices.SortStableFunc(cols, func(a, b perfColumn) int { return cmp.Compare(a.order, b.order) })
	fmt.Fprintln(out)
	fmt.Fprintf(out, "## Where the CPU goes at c=%d (BENCH_PERF: perf record -e cpu-clock -F %d -g; µs per request; perf adds its own cost)\n", ceilingConns, perfHz)
	fmt.Fprintf(out, "%-32s", "")
	for _, c := range cols {
		fmt.Fprintf(out, " %22s", c.name)
	}
	fmt.Fprintln(out)
	total := make([]float64, len(cols))
	for _, part := range perfParts {
		fmt.Fprintf(out, "%-32s", part)
		for i, c := range cols {
			fmt.Fprintf(out, " %22.1f", c.us[part])
			total[i] += c.us[part]
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "%-32s", "total")
	for _, t := range total {
		fmt.Fprintf(out, " %22.1f", t)
	}
	fmt.Fprintln(out)
}

// addPerf adds rec's split over cell c as a column named name.
func addPerf(tb testing.TB, cols []perfColumn, rec *perfRecording, name string, order int, c cell) []perfColumn {
	if rec == nil {
		return cols
	}
	us, err := rec.split(c.requests)
	if err != nil {
		tb.Logf("BENCH_PERF: %s: %v", name, err)
		return cols
	}
	return append(cols, perfColumn{name: name, order: order, us: us})
}

// fileName makes a route's name a file name's part.
func fileName(s string) string {
	return strings.NewReplacer(" ", "", "/", "-", ",", "", "=", "").Replace(s)
}

// A sample is sorted by its user-space stack, and by whether it fell in the
// kernel under it.
func TestPerfSortsSamplesByTheirStack(t *testing.T) {
	const script = `
	ffffffff82242009 pvm_irq_enable
	ffffffff8223c951 do_syscall_64
	            b48e internal/runtime/syscall/linux.Syscall6
	           a753b syscall.write
	           de53f internal/poll.(*FD).Write
	          50efa3 github.com/sessionlab/sessionlab/handlers.(*oneWriteConn).release
	          2af6ae net/http.serverHandler.ServeHTTP
	          2a3d30 net/http.(*conn).serve

	          365a73 github.com/a-h/templ/runtime.(*Buffer).WriteString+0x13
	          519e6b github.com/sessionlab/sessionlab/handlers.(*App).write
	          2af6ae net/http.serverHandler.ServeHTTP
	          2a3d30 net/http.(*conn).serve

	          1a2b3c runtime.nextFreeFast
	          1a2b00 runtime.mallocgc
	          519e6b github.com/sessionlab/sessionlab/handlers.(*App).write
	          2af6ae net/http.serverHandler.ServeHTTP

	ffffffff813aecd2 finish_task_switch.isra.0
	           35767 runtime.tryDeferToSpanScan
	           321b4 runtime.markrootBlock
	           31000 runtime.gcBgMarkWorker

	          11291 internal/runtime/maps.(*Iter).Next
	          29efd1 net/http.(*conn).readRequest
	          2a3ab4 net/http.(*conn).serve

	ffffffff82248b73 schedule
	           23000 runtime.futex
	           24000 runtime.notesleep
	           25000 runtime.stopm

	          40000 github.com/redis/rueidis.(*pipe)._backgroundWrite
`
	want := map[string]int{
		"kernel: write":                  1,
		"the handler's own code":         1,
		"allocation":                     1,
		"GC":                             1,
		"net/http outside the handler":   1,
		"scheduler (runtime and kernel)": 1,
		"the Redis client's goroutines":  1,
	}
	got := perfCounts([]byte(script))
	if !maps.Equal(got, want) {
		t.Errorf("samples sorted as %v, want %v", got, want)
	}
	for part := range got {
		if !slices.Contains(perfParts, part) {
			t.Errorf("part %q is not printed (perfParts)", part)
		}
	}
}

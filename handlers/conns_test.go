package handlers

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/throttle"
)

// The limits follow -class and RLIMIT_NOFILE: a class of 200 with two
// browsers of six connections each fits behind one address, the process
// leaves a quarter of its descriptors (at least the Redis pool and 64) for
// everything but clients, and one address never holds more than half of
// the rest.
func TestConnLimitsFor(t *testing.T) {
	for _, tc := range []struct {
		class, pool int
		nofile      uint64
		want        ConnLimits
	}{
		{200, 64, 0, ConnLimits{PerAddress: 3000}},                    // unknown: no process bound
		{200, 64, 1 << 40, ConnLimits{PerAddress: 3000}},              // unlimited in practice
		{200, 64, 1024, ConnLimits{PerAddress: 384, PerProcess: 768}}, // the report's prlimit: one address gets half
		{200, 64, 20000, ConnLimits{PerAddress: 3000, PerProcess: 15000}},
		{200, 64, 524288, ConnLimits{PerAddress: 3000, PerProcess: 393216}}, // systemd's hard limit
		{2, 400, 1024, ConnLimits{PerAddress: 30, PerProcess: 560}},         // a big pool keeps its descriptors
		{2, 64, 100, ConnLimits{PerAddress: 12, PerProcess: 25}},            // too few to keep the reserve
	} {
		if got := ConnLimitsFor(tc.class, tc.nofile, tc.pool); got != tc.want {
			t.Errorf("ConnLimitsFor(%d, %d, %d) = %+v; want %+v", tc.class, tc.nofile, tc.pool, got, tc.want)
		}
	}
	if 2*6*200 > ConnLimitsFor(200, 0, 64).PerAddress {
		t.Error("a class of 200, two browsers of six connections each, does not fit behind one address")
	}
}

// Past the process bound every new connection is closed unanswered, a
// trusted proxy's too (the bound keeps descriptors for Redis, whoever asks),
// and counted in sessionlab_connections_refused_total; a closed one gives
// its place back.
func TestConnectionsPastTheProcessBoundAreClosed(t *testing.T) {
	ta := newTestApp(t, func(a *App) {
		a.ConnLimits = ConnLimits{PerAddress: 100, PerProcess: 5}
		a.TrustedProxies = Proxies{mustPrefix(t, "127.0.0.1/32")}
	})
	addr := strings.TrimPrefix(ta.srv.URL, "http://")
	var held []net.Conn
	for i := range 5 {
		c := dialIdle(t, addr)
		if status, err := getHealthz(c); status != http.StatusOK {
			t.Fatalf("connection %d of 5: %d, %v; want 200", i+1, status, err)
		}
		held = append(held, c)
	}
	if status, err := getHealthz(dialIdle(t, addr)); status != 0 || err == nil || isTimeout(err) {
		t.Errorf("connection 6 past the process bound of 5: %d, %v; want it closed unanswered", status, err)
	}
	if status, err := getHealthz(held[4]); status != http.StatusOK {
		t.Errorf("a held connection's next request: %d, %v; want 200", status, err)
	}
	_ = held[0].Close()
	var status int
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if status, err = getHealthz(dialIdle(t, addr)); status == http.StatusOK {
			break
		}
	}
	if status != http.StatusOK {
		t.Errorf("after one of 5 closed: %d, %v; want 200", status, err)
	}
	rec := httptest.NewRecorder()
	ta.app.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `sessionlab_connections_refused_total{bound="process"} `) ||
		strings.Contains(rec.Body.String(), `sessionlab_connections_refused_total{bound="process"} 0`) {
		t.Errorf("no refusal counted at the process bound:\n%s", grepLines(rec.Body.String(), "connections_refused"))
	}
	if logs := ta.logs.String(); !strings.Contains(logs, `msg="connections refused at a bound`) || !strings.Contains(logs, "bound=process limit=5") {
		t.Errorf("no refusal line for the process bound:\n%s", logs)
	}
}

func mustPrefix(t *testing.T, s string) netip.Prefix {
	t.Helper()
	ps, err := ParseTrustedProxies(s)
	if err != nil || len(ps) != 1 {
		t.Fatalf("ParseTrustedProxies(%q): %v", s, err)
	}
	return ps[0]
}

func dialIdle(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// getHealthz sends GET /healthz on c and reads the answer: its status, or 0
// and why not. c must not be shared with another reader.
func getHealthz(c net.Conn) (int, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		return 0, err
	}
	// One response at a time and no pipelining: a fresh reader loses nothing.
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The bound costs a lock and a map update per connection, nothing per
// request: accept+close over loopback with and without it.
func BenchmarkAcceptClose(b *testing.B) {
	for _, bc := range []struct {
		name string
		wrap func(net.Listener) net.Listener
	}{
		{"plain", func(ln net.Listener) net.Listener { return ln }},
		{"limited", func(ln net.Listener) net.Listener {
			a := &App{ConnLimits: ConnLimitsFor(200, 20000, 64)}
			return a.LimitConns(ln)
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			l := bc.wrap(ln)
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					_ = c.Close()
				}
			}()
			buf := make([]byte, 1)
			for b.Loop() {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				_, _ = c.Read(buf) // until the server's close
				_ = c.Close()
			}
		})
	}
}

// BenchmarkConnAdmitRelease is the bound's own work per connection: the
// address's key, its count in and out.
func BenchmarkConnAdmitRelease(b *testing.B) {
	l := &connLimiter{app: &App{}, lim: ConnLimitsFor(200, 20000, 64), byAddr: map[string]int{}}
	ip := netip.MustParseAddr("192.0.2.1")
	for b.Loop() {
		subject := throttle.Subject(ip)
		if bound, _ := l.admit(subject, true); bound != "" {
			b.Fatal(bound)
		}
		l.release(subject, true)
	}
}

package process

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// stuckStream is a GET /live whose client never reads: a socket with a
// small receive buffer, as a tab frozen by the browser or a hostile client.
type stuckStream struct {
	conn net.Conn
	own  *http.Client // holds the stream's session
}

// openStuckStream opens /live at app with the session cookie of c and reads
// nothing but the response's status line.
func openStuckStream(t *testing.T, app *apptest.Process, c *http.Client) *stuckStream {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", app.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /live HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nCookie: session=%s\r\n\r\n",
		app.Addr, apptest.SessionToken(t, c, app.URL))
	return &stuckStream{conn: conn, own: c}
}

// serverQueue is how many bytes the server's end of the stream has sent
// that the client has not taken (its send queue, from /proc/net/tcp); -1
// when the server's end is gone.
func (s *stuckStream) serverQueue(t *testing.T) int {
	t.Helper()
	// The server's socket: local address is the app's, remote is ours.
	local := s.conn.LocalAddr().(*net.TCPAddr)
	remote := s.conn.RemoteAddr().(*net.TCPAddr)
	want := fmt.Sprintf("%08X:%04X %08X:%04X", hexIP(remote.IP), remote.Port, hexIP(local.IP), local.Port)
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skipf("no /proc/net/tcp: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[1]+" "+f[2] == want {
			tx, _, _ := strings.Cut(f[4], ":")
			n, _ := strconv.ParseInt(tx, 16, 64)
			return int(n)
		}
	}
	return -1
}

// hexIP is an IPv4 address as /proc/net/tcp writes it (little-endian).
func hexIP(ip net.IP) uint32 {
	v4 := ip.To4()
	return uint32(v4[3])<<24 | uint32(v4[2])<<16 | uint32(v4[1])<<8 | uint32(v4[0])
}

// jam makes the stream busy (counts of its own session, and of other
// sessions from this address for its browsers list) until the server's
// writes to it block: its send queue is
// full and stops growing. It returns the bytes queued.
func (s *stuckStream) jam(t *testing.T, app *apptest.Process, untilDropped bool) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := apptest.Client(t)
			if i%2 == 0 {
				// Counts of the stream's own session: an event each, not
				// coalesced as the browsers lists are (one a second).
				c = &http.Client{Jar: s.own.Jar, CheckRedirect: s.own.CheckRedirect, Timeout: s.own.Timeout}
			}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, app.URL+"/count", nil)
				if resp, err := c.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}()
	}
	defer wg.Wait()
	defer cancel()
	last, still := 0, 0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		q := s.serverQueue(t)
		if q > 0 && q == last {
			still++
		} else {
			still = 0
		}
		last = q
		// Unchanged for a quarter second while counts keep coming: the
		// server's write is blocked; or more queued than a page leaves
		// unread (the server drops it at 64 KB), or already dropped.
		if q < 0 || !untilDropped && (still >= 5 && q >= 16<<10 || q >= 48<<10) {
			return q
		}
	}
	t.Fatalf("the stream's send queue never filled (last %d bytes)", last)
	return 0
}

// dropped reports whether the server has let go of the stream within
// the time given: its end of the connection, with the bytes queued on it,
// is gone.
func (s *stuckStream) dropped(t *testing.T, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if s.serverQueue(t) < 0 {
			return true
		}
	}
	return false
}

func startWithStream(t *testing.T, args ...string) (*apptest.Process, *stuckStream) {
	t.Helper()
	rs := redistest.Start(t)
	app := apptest.Start(t, bin, append([]string{"-redis", rs.URL()}, args...)...)
	c := apptest.Client(t)
	apptest.Get(t, c, app.URL+"/count") // a stored session, so the stream subscribes
	return app, openStuckStream(t, app, c)
}

// A client that does not take its events is dropped within a few seconds;
// its queued bytes are not kept for it.
func TestAStuckStreamIsDropped(t *testing.T) {
	app, s := startWithStream(t)
	// Jammed until the server drops it (jam fails the test after 30 s); the
	// server drops a stream whose client leaves 64 KB unread, or a write
	// that waits 5 s.
	s.jam(t, app, true)
	if !s.dropped(t, 20*time.Second) {
		t.Fatalf("the server still holds %d bytes for a client that has not read for 20 s", s.serverQueue(t))
	}
}

// SIGTERM never waits on a stuck stream: the process exits long before its
// shutdown timeout (60 s here).
func TestSIGTERMDoesNotWaitForAStuckStream(t *testing.T) {
	app, s := startWithStream(t, "-shutdown-timeout", "60s")
	s.jam(t, app, false)
	start := time.Now()
	_ = syscall.Kill(app.PID(), syscall.SIGTERM)
	select {
	case <-app.Exited():
		t.Logf("SIGTERM with a stuck stream open: exited in %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM with a stuck stream open\n%s", app.Log())
	}
	if strings.Contains(app.Log(), "shutdown timed out") {
		t.Errorf("shutdown timed out on a stream:\n%s", app.Log())
	}
}

// The restart button brings the server back even with a stuck stream open
// (it used to wait the whole shutdown timeout, then exit 1).
func TestRestartComesBackWithAStuckStream(t *testing.T) {
	app, s := startWithStream(t, "-demo-controls")
	s.jam(t, app, false)
	c := apptest.Client(t)
	before := processOf(t, c, app.URL)
	req, _ := http.NewRequest(http.MethodPost, app.URL+"/restart", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /restart: %d, want 202", resp.StatusCode)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		select {
		case <-app.Exited():
			t.Fatalf("the process exited instead of restarting\n%s", app.Log())
		default:
		}
		if p := tryProcessOf(c, app.URL); p != "" && p != before {
			return
		}
	}
	t.Fatalf("no new process answered within 30 s of POST /restart\n%s", app.Log())
}

// processOf is the process id the app's pages show.
func processOf(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	p := tryProcessOf(c, base)
	if p == "" {
		t.Fatalf("no process id at %s", base)
	}
	return p
}

func tryProcessOf(c *http.Client, base string) string {
	resp, err := c.Get(base + "/login")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_, rest, ok := strings.Cut(string(b), `data-process="`)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// A client that stalls in the middle of a form's body holds a request in
// flight; the restart button waits for it at most a moment, not the whole
// shutdown timeout (10 s), while every new connection is refused.
func TestRestartIsNotHeldUpByAStalledClient(t *testing.T) {
	app := apptest.Start(t, bin, "-redis", redistest.Start(t).URL(), "-demo-controls", "-drain", "0")
	stalled, err := net.Dial("tcp", app.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	fmt.Fprintf(stalled, "POST /login HTTP/1.1\r\nHost: %s\r\nOrigin: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=a", app.Addr, app.URL)
	time.Sleep(200 * time.Millisecond) // the handler is reading the body

	c := apptest.Client(t)
	before := processOf(t, c, app.URL)
	start := time.Now()
	resp, err := c.Post(app.URL+"/restart", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /restart: %d, want 202", resp.StatusCode)
	}
	for time.Since(start) < 30*time.Second {
		if p := tryProcessOf(c, app.URL); p != "" && p != before {
			// restartGrace (2 s) and the new process's start, with room
			// for a busy machine; the old wait was the 10 s timeout.
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("a new process answered %v after POST /restart, want within the restart's grace", d.Round(time.Millisecond))
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no new process answered within 30 s of POST /restart\n%s", app.Log())
}

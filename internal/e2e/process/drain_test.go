package process

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// SIGTERM drains: a request in flight when the signal arrives is answered
// and its session write lands in Redis, new connections are refused at
// once, and the process exits cleanly (well) within the shutdown timeout.
//
// The request in flight is a registration with a high bcrypt cost: slow by
// design, so it is still running when the signal comes, and it ends with a
// session write. The test knows it is running from the goroutine dump of
// the debug listener, not from a sleep.
func TestSIGTERMDrainsRequestsInFlight(t *testing.T) {
	rs := redistest.Start(t)
	const shutdownTimeout = 60 * time.Second
	p := apptest.Start(t, bin, "-redis", rs.URL(), "-bcrypt-cost", "13",
		"-debug-addr", "127.0.0.1:0", "-shutdown-timeout", shutdownTimeout.String())
	debug := p.DebugURL()
	c := apptest.Client(t)

	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.PostForm(p.URL+"/register", url.Values{"username": {"drain"}, "password": {"drain-password"}})
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- result{resp, err}
	}()
	waitForBcrypt(t, debug)

	signalled := time.Now()
	if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused while the registration still runs.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the app still accepts connections 10 s after SIGTERM")
		}
	}
	select {
	case <-done:
		t.Fatal("the registration was answered before the listener closed; cannot tell drain from luck (bcrypt too fast?)")
	default:
	}

	r := <-done
	if r.err != nil {
		t.Fatalf("the request in flight failed: %v\n%s", r.err, p.Log())
	}
	if r.resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the request in flight: %d, want 303", r.resp.StatusCode)
	}
	var token string
	for _, ck := range r.resp.Cookies() {
		if ck.Name == "session" {
			token = ck.Value
		}
	}
	if token == "" {
		t.Fatal("the request in flight set no session cookie")
	}
	if v := rs.MustDo("GET", "sess:"+token); !strings.Contains(v, `"username":"drain"`) {
		t.Errorf("the session write did not land: sess:<token> = %q", v)
	}

	select {
	case <-p.Exited():
	case <-time.After(shutdownTimeout):
		t.Fatal("the app did not exit within the shutdown timeout")
	}
	p.Stop() // fails the test unless the exit was clean
	if !strings.Contains(p.Log(), `msg=stopped`) {
		t.Errorf("no clean shutdown in the log:\n%s", p.Log())
	}
	t.Logf("exited %v after SIGTERM", time.Since(signalled).Round(time.Millisecond))
}

// A request that outlasts the shutdown timeout does not keep the process:
// it exits when the timeout is up, and says the drain was cut short.
func TestSIGTERMGivesUpAtTheShutdownTimeout(t *testing.T) {
	rs := redistest.Start(t)
	const shutdownTimeout = 100 * time.Millisecond // a cost-14 bcrypt takes a second or more
	p := apptest.Start(t, bin, "-redis", rs.URL(), "-bcrypt-cost", "14",
		"-debug-addr", "127.0.0.1:0", "-shutdown-timeout", shutdownTimeout.String())
	debug := p.DebugURL()
	c := apptest.Client(t)
	go func() {
		if resp, err := c.PostForm(p.URL+"/register", url.Values{"username": {"slow"}, "password": {"slow-password"}}); err == nil {
			resp.Body.Close()
		}
	}()
	waitForBcrypt(t, debug)
	signalled := time.Now()
	if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(shutdownTimeout + 10*time.Second):
		t.Fatalf("still running %v after SIGTERM with a %v shutdown timeout", time.Since(signalled), shutdownTimeout)
	}
	if !strings.Contains(p.Log(), "shutdown: context deadline exceeded") {
		t.Errorf("the log does not say the drain was cut short:\n%s", p.Log())
	}
	t.Logf("exited %v after SIGTERM", time.Since(signalled).Round(time.Millisecond))
}

// waitForBcrypt returns once a goroutine of the app is hashing a password,
// read from its goroutine dump: the registration is then surely in flight.
func waitForBcrypt(t *testing.T, debug string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if strings.Contains(apptest.DebugGet(t, debug, "/debug/pprof/goroutine?debug=2"), "bcrypt.GenerateFromPassword") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the registration never reached bcrypt")
		}
	}
}

// SIGTERM with a drain period: /readyz says not ready at once, so a load
// balancer stops sending, while every request that still comes is served
// (counted, on a new connection too) and told Connection: close, so no
// proxy keeps an idle connection to a stopping instance. When the period is
// up the listener closes and the process exits cleanly. Ctrl-C (SIGINT)
// skips the period.
func TestSIGTERMDrainPeriod(t *testing.T) {
	rs := redistest.Start(t)
	p := apptest.Start(t, bin, "-redis", rs.URL(), "-drain", "3s")
	c := apptest.Client(t)
	if code, _ := apptest.Get(t, c, p.URL+"/count"); code != http.StatusOK {
		t.Fatalf("GET /count: %d", code)
	}
	if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		code, body := apptest.Get(t, c, p.URL+"/readyz")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "draining") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %q after SIGTERM", code, body)
		}
	}
	// Still serving: a count on a fresh connection is counted, and the
	// answer closes its connection.
	fresh := apptest.Client(t)
	fresh.Jar = c.Jar
	fresh.Transport = &http.Transport{}
	resp, err := fresh.Get(p.URL + "/count")
	if err != nil {
		t.Fatalf("GET /count while draining: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || apptest.ViewCount(t, string(b)) != "2" {
		t.Fatalf("GET /count while draining: %d, count %s; want 200 and 2", resp.StatusCode, apptest.ViewCount(t, string(b)))
	}
	if !resp.Close {
		t.Error("an answer while draining keeps its connection open; want Connection: close")
	}
	select {
	case <-p.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("the app did not exit after its drain period")
	}
	p.Stop() // fails unless the exit was clean
	if _, err := net.DialTimeout("tcp", p.Addr, time.Second); err == nil {
		t.Error("the listener still accepts after the exit")
	}
	if !strings.Contains(p.Log(), "draining") || !strings.Contains(p.Log(), "msg=stopped") {
		t.Errorf("the log does not show a drain and a clean stop:\n%s", p.Log())
	}

	t.Run("Ctrl-C skips the drain", func(t *testing.T) {
		p := apptest.Start(t, bin, "-redis", rs.URL(), "-drain", "10m")
		if err := syscall.Kill(p.PID(), syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.Exited():
		case <-time.After(30 * time.Second):
			t.Fatal("SIGINT waited for the 10 minute drain period")
		}
		if strings.Contains(p.Log(), "draining") {
			t.Errorf("SIGINT drained:\n%s", p.Log())
		}
	})
}

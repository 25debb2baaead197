package handlers

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Slow and vanished clients are not server errors: no 500, no ERROR line.
func TestSlowAndVanishedClients(t *testing.T) {
	t.Run("a client that stops sending its body gets 408 or a closed connection", func(t *testing.T) {
		ta := newTestApp(t)
		// The app's server (main.newServer) has a read timeout; a short
		// one here keeps the test quick.
		srv := httptest.NewUnstartedServer(ta.app.Routes())
		srv.Config.ReadTimeout = 500 * time.Millisecond
		srv.Start()
		t.Cleanup(srv.Close)
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, _ = conn.Write([]byte("POST /login HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() +
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=al"))
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		switch {
		case err != nil && strings.Contains(err.Error(), "timeout"):
			t.Fatalf("no answer and the connection still open after 5 s: %v", err)
		case err == nil && resp.StatusCode != http.StatusRequestTimeout:
			t.Errorf("status %d, want 408 (or a closed connection)", resp.StatusCode)
		}
		waitForLog(t, ta, "form body not received")
		if !logged(ta.logs.String(), "form body not received", "last_method=POST", "last_route=/login") {
			t.Errorf("the line does not name the route /login:\n%s", ta.logs.String())
		}
		if strings.Contains(ta.logs.String(), "level=ERROR") {
			t.Errorf("a slow client was logged as an error:\n%s", ta.logs.String())
		}
	})

	t.Run("a client that leaves mid-request is logged as gone, not as a 500", func(t *testing.T) {
		ta := newTestApp(t)
		c := ta.client()
		ta.get(c, "/count") // a stored session, so the next count runs a script
		// Scripts (writes) wait; reads go on: the count's session loads,
		// then its increment hangs until the client gives up.
		ta.redis.MustDo("CLIENT", "PAUSE", "5000", "WRITE")
		t.Cleanup(func() { ta.redis.MustDo("CLIENT", "UNPAUSE") })
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ta.srv.URL+"/count", nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("GET /count answered %d while Redis paused writes; want the client to give up first", resp.StatusCode)
		}
		waitForLog(t, ta, "msg=\"client gone\"")
		if logs := ta.logs.String(); strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "status=500") {
			t.Errorf("a vanished client was logged as a server error:\n%s", logs)
		}
	})

	t.Run("a client that leaves as its live stream opens is not an error", func(t *testing.T) {
		ta := newTestApp(t)
		// Gone before the hello is rendered: the request's context is
		// cancelled, as the server cancels it when the connection closes
		// (found by closing hundreds of /live requests at once: 92 ERROR
		// lines "live: render hello" err="context canceled").
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/live", nil)
		ta.app.Routes().ServeHTTP(httptest.NewRecorder(), req)
		ta.noErrorLogged(t)
	})
}

// waitForLog waits up to 5 s for the app to log a line containing s.
func waitForLog(t *testing.T, ta *testApp, s string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(ta.logs.String(), s) {
			return
		}
	}
	t.Fatalf("the app never logged %q:\n%s", s, ta.logs.String())
}

package handlers

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// What a client does to its own requests (leaving before the answer, never
// sending the body it announced, sending again a token a login renewed) is
// logged a line a minute per kind, as refusals are: the first at once, then
// one that says how many requests since, from how many clients, and names the
// latest's method and route. One client must not write a line per request at
// will (found by the clients review: 2,000 vanishing requests in 0.7 s wrote
// 717 "client gone" lines and 157 "live: cannot read the browsers list";
// 2,000 slow bodies wrote 2,000 "form body not received").
func TestAClientCannotWriteALinePerRequest(t *testing.T) {
	const n = 30
	for _, tc := range []struct {
		name, line  string
		before      string // the line such a request wrote before, if another
		lastRoute   string
		makeRequest func(t *testing.T, ta *testApp) func() // setup, then one request
	}{
		{"requests whose client left", "client gone", "", "last_route=/count", func(t *testing.T, ta *testApp) func() {
			cookie := storedSession(t, ta)
			return func() {
				ctx, cancel := context.WithCancel(context.Background())
				cancel() // gone before the session loads
				req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/count", nil)
				req.Header.Set("Cookie", cookie)
				ta.app.Routes().ServeHTTP(httptest.NewRecorder(), req)
			}
		}},
		{"live streams whose client left as they opened", "client gone", "live: cannot read the browsers list", "last_route=/live", func(t *testing.T, ta *testApp) func() {
			cookie := storedSession(t, ta)
			var one sync.Mutex // a stream at a time: a session's streams are bounded
			return func() {
				one.Lock()
				defer one.Unlock()
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/live", nil)
				req.Header.Set("Cookie", cookie)
				// Gone once the hello is out: the stream then reads the
				// browsers list with a cancelled context.
				ta.app.Routes().ServeHTTP(&leavingWriter{ResponseRecorder: httptest.NewRecorder(), leave: cancel}, req)
			}
		}},
		{"form bodies that never came", "form body not received", "", "last_route=/login", func(t *testing.T, ta *testApp) func() {
			srv := httptest.NewUnstartedServer(ta.app.Routes())
			srv.Config.ReadTimeout = 200 * time.Millisecond // main.newServer's is 10 s
			srv.Start()
			t.Cleanup(srv.Close)
			return func() {
				conn, err := net.Dial("tcp", srv.Listener.Addr().String())
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				_, _ = conn.Write([]byte("POST /login HTTP/1.1\r\nHost: " + srv.Listener.Addr().String() +
					"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nusername=al"))
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
					resp.Body.Close()
				}
			}
		}},
		{"a token a login renewed, sent again", "request on a renewed token", "", "last_route=/count", renewedTokenSentAgain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestApp(t)
			request := tc.makeRequest(t, ta)
			lines := func() []string {
				var ls []string
				for line := range strings.Lines(ta.logs.String()) {
					if lineHas(line, tc.line) || tc.before != "" && lineHas(line, tc.before) {
						ls = append(ls, line)
					}
				}
				return ls
			}
			var wg sync.WaitGroup
			for range n {
				wg.Go(request)
			}
			wg.Wait()
			if ls := lines(); len(ls) != 1 {
				t.Fatalf("%d lines %q for %d requests from one client within a minute, want 1:\n%s", len(ls), tc.line, n, ta.logs.String())
			}
			ta.app.tallies.backdate(tc.line, perMinuteEvery)
			request()
			ls := lines()
			if len(ls) != 2 {
				t.Fatalf("%d lines a minute later, want 2:\n%s", len(ls), ta.logs.String())
			}
			// The first line's request is not counted again.
			if want := []string{"requests=30", "clients=1", tc.lastRoute}; !lineHas(ls[1], "", want...) {
				t.Errorf("second line:\n%s\nwant %v", ls[1], want)
			}
			for _, f := range []string{" method=", " route=", " client="} {
				if strings.Contains(ls[1], f) {
					t.Errorf("the line names one request's %s as if it stood for all:\n%s", strings.Trim(f, " ="), ls[1])
				}
			}
			ta.noErrorLogged(t)
		})
	}
}

// storedSession is the Cookie header of a session stored in Redis.
func storedSession(t *testing.T, ta *testApp) string {
	t.Helper()
	c := ta.client()
	ta.get(c, "/count")
	token := ta.token(c)
	if token == "" {
		t.Fatal("GET /count set no session cookie")
	}
	return ta.app.Sessions.Cookie.Name + "=" + url.QueryEscape(token)
}

// leavingWriter is a stream's client that leaves after its first flush.
type leavingWriter struct {
	*httptest.ResponseRecorder
	leave func()
}

func (w *leavingWriter) Flush() {
	w.ResponseRecorder.Flush()
	w.leave()
}

func (w *leavingWriter) SetWriteDeadline(time.Time) error { return nil }
func (w *leavingWriter) SetReadDeadline(time.Time) error  { return nil }

// renewedTokenSentAgain logs a user in (renewing the token), then returns
// an event: a GET /count with the old token, answered 409.
func renewedTokenSentAgain(t *testing.T, ta *testApp) func() {
	c := ta.client()
	ta.register(c, "gus", "gus-password")
	old := ta.token(c)
	ta.login(c, "gus", "gus-password") // renews the token: old is answered 409 for a while
	return func() {
		req, _ := http.NewRequest(http.MethodGet, ta.srv.URL+"/count", nil)
		req.Header.Set("Cookie", ta.app.Sessions.Cookie.Name+"="+old)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("GET /count with the renewed token: %d, want 409", resp.StatusCode)
		}
	}
}

package handlers

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

// The restart button answers only the person at the machine: a loopback
// client that names a loopback host (a page on another site can reach
// 127.0.0.1 through DNS rebinding, but only under its own name). Anyone
// else gets 404 whatever the method, so nobody learns the flag is on.
func TestRestartAnswersOnlyTheMachine(t *testing.T) {
	restarts := 0
	ta := newTestApp(t, func(a *App) {
		a.Restart = func() { restarts++ }
		a.TrustedProxies = Proxies{netip.MustParsePrefix("127.0.0.1/32")}
	})
	_, port, _ := strings.Cut(strings.TrimPrefix(ta.srv.URL, "http://"), ":")
	send := func(method, host string, headers ...string) response {
		t.Helper()
		req, _ := http.NewRequest(method, ta.srv.URL+"/restart", nil)
		req.Host = host
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		return ta.do(ta.client(), req)
	}
	methods := []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPost, http.MethodPut, http.MethodDelete}
	for _, host := range []string{"evil.example:" + port, "evil.example", "localhost.evil.example:" + port, "127.0.0.1.nip.io:" + port} {
		for _, m := range methods {
			t.Run(m+" with Host "+host, func(t *testing.T) {
				r := send(m, host, "Origin", "http://"+host, "Sec-Fetch-Site", "same-origin")
				if r.status != http.StatusNotFound || r.header.Get("Allow") != "" {
					t.Errorf("%d (Allow %q), want 404 and no Allow", r.status, r.header.Get("Allow"))
				}
			})
		}
	}
	for _, m := range methods {
		t.Run(m+" from another machine", func(t *testing.T) {
			if r := send(m, "localhost:"+port, "X-Forwarded-For", "203.0.113.9"); r.status != http.StatusNotFound || r.header.Get("Allow") != "" {
				t.Errorf("%d (Allow %q), want 404 and no Allow", r.status, r.header.Get("Allow"))
			}
		})
	}
	if restarts != 0 {
		t.Fatalf("%d restarts from strangers", restarts)
	}
	t.Run("GET at the machine is told to POST", func(t *testing.T) {
		if r := send(http.MethodGet, "localhost:"+port); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost {
			t.Errorf("%d (Allow %q), want 405 with Allow: POST", r.status, r.header.Get("Allow"))
		}
	})
	for i, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "LOCALHOST", "127.0.0.1"} {
		t.Run("POST with Host "+host, func(t *testing.T) {
			if r := send(http.MethodPost, host); r.status != http.StatusAccepted || restarts != i+1 {
				t.Errorf("%d, %d restarts; want 202 and a restart", r.status, restarts)
			}
		})
	}
}

// Behind a proxy or tunnel nobody declared (no -trusted-proxies: nginx on
// the laptop, ngrok, cloudflared), every client connects from loopback and
// writes the Host it likes; the proxy's own headers still say the request
// was forwarded, so it is no one at the machine (hostile-clients run: POST
// /restart from 127.0.0.1 with X-Forwarded-For: 203.0.113.9 and Host:
// localhost answered 202 and restarted the process).
func TestRestartRefusesRequestsForwardedByAnUndeclaredProxy(t *testing.T) {
	restarts := 0
	ta := newTestApp(t, func(a *App) { a.Restart = func() { restarts++ } })
	_, port, _ := strings.Cut(strings.TrimPrefix(ta.srv.URL, "http://"), ":")
	for _, h := range [][2]string{
		{"X-Forwarded-For", "203.0.113.9"},
		{"X-Forwarded-For", "127.0.0.1"},
		{"Forwarded", "for=203.0.113.9;proto=https"},
		{"X-Real-Ip", "203.0.113.9"},
	} {
		t.Run(h[0]+": "+h[1], func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, ta.srv.URL+"/restart", nil)
			req.Host = "localhost:" + port
			req.Header.Set(h[0], h[1])
			if r := ta.do(ta.client(), req); r.status != http.StatusNotFound {
				t.Errorf("%d, want 404", r.status)
			}
		})
	}
	if restarts != 0 {
		t.Fatalf("%d restarts through an undeclared proxy", restarts)
	}
	req, _ := http.NewRequest(http.MethodPost, ta.srv.URL+"/restart", nil)
	req.Host = "localhost:" + port
	if r := ta.do(ta.client(), req); r.status != http.StatusAccepted || restarts != 1 {
		t.Errorf("POST at the machine: %d, %d restarts; want 202 and a restart", r.status, restarts)
	}
}

// Demo controls refused to strangers are logged a line a minute that says
// how many, from how many clients and which most, not one client beside
// everyone's count; the Host and method are the latest refusal's.
func TestDemoControlRefusalLinesSayWhoWasRefused(t *testing.T) {
	ta := newTestApp(t, behindProxy, func(a *App) { a.Restart = func() {} })
	_, port, _ := strings.Cut(strings.TrimPrefix(ta.srv.URL, "http://"), ":")
	send := func(from string, times int) {
		t.Helper()
		for range times {
			req, _ := http.NewRequest(http.MethodPost, ta.srv.URL+"/restart", nil)
			req.Host = "localhost:" + port
			req.Header.Set("X-Forwarded-For", from)
			if r := ta.do(ta.client(), req); r.status != http.StatusNotFound {
				t.Fatalf("POST /restart from %s: %d, want 404", from, r.status)
			}
		}
	}
	lines := func() []string {
		var ls []string
		for line := range strings.Lines(ta.logs.String()) {
			if lineHas(line, "demo control refused: not at this machine") {
				ls = append(ls, line)
			}
		}
		return ls
	}
	send("203.0.113.9", 1)
	if ls := lines(); len(ls) != 1 || !lineHas(ls[0], "", "refused=1", "clients=1", `top="203.0.113.9 (1)"`, "last_method=POST", "last_host=localhost:"+port) {
		t.Fatalf("after the first refusal, want one line with refused=1 clients=1 top=\"203.0.113.9 (1)\":\n%s", ta.logs.String())
	}
	send("203.0.113.9", 3)
	send("198.51.100.7", 1)
	ta.app.tallies.backdate("demo control", perMinuteEvery)
	send("198.51.100.7", 1)
	ls := lines()
	if len(ls) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(ls), ta.logs.String())
	}
	if want := []string{"refused=5", "clients=2", `top="203.0.113.9 (3), 198.51.100.7 (2)"`}; !lineHas(ls[1], "", want...) {
		t.Errorf("second line:\n%s\nwant %v", ls[1], want)
	}
	for _, l := range ls {
		if strings.Contains(l, " client=") || strings.Contains(l, " host=") {
			t.Errorf("a line names one request's client or host as if it stood for all:\n%s", l)
		}
	}

	// The Host is the client's to write, as long as net/http reads it:
	// the line names only its start.
	long := strings.Repeat("h", 5000) + ".example"
	ta.app.tallies.backdate("demo control", perMinuteEvery)
	req, _ := http.NewRequest(http.MethodPost, ta.srv.URL+"/restart", nil)
	req.Host = long
	if r := ta.do(ta.client(), req); r.status != http.StatusNotFound {
		t.Fatalf("POST /restart with a long Host: %d, want 404", r.status)
	}
	ls = lines()
	if len(ls) != 3 || len(ls[2]) > 400 || !strings.Contains(ls[2], "last_host=hhhh") {
		t.Errorf("a line for a %d-byte Host is %d bytes, want its Host cut short:\n%.600s", len(long), len(ls[len(ls)-1]), ls[len(ls)-1])
	}
}

// Static files are the embedded ones and nothing else; routes that only
// read answer every other method 405 with Allow, not 404.
func TestReadOnlyRoutes(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	for _, path := range []string{"/static/", "/static/nothing.js", "/static/app.go"} {
		if r := ta.get(c, path); r.status != http.StatusNotFound || strings.Contains(r.body, "live.js") {
			t.Errorf("GET %s: %d %q, want 404 and no listing", path, r.status, r.body)
		}
	}
	if r := ta.get(c, "/static/live.js"); r.status != http.StatusOK {
		t.Errorf("GET /static/live.js: %d", r.status)
	}
	for _, path := range []string{"/static/live.js", "/static/", "/healthz", "/readyz"} {
		for _, m := range []string{http.MethodOptions, http.MethodPut, http.MethodPost, http.MethodDelete} {
			req, _ := http.NewRequest(m, ta.srv.URL+path, nil)
			if r := ta.do(c, req); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d (Allow %q), want 405 with Allow: GET, HEAD", m, path, r.status, r.header.Get("Allow"))
			}
		}
		req, _ := http.NewRequest(http.MethodHead, ta.srv.URL+path, nil)
		if r := ta.do(c, req); r.status == http.StatusMethodNotAllowed {
			t.Errorf("HEAD %s: 405", path)
		}
	}
}

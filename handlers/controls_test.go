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

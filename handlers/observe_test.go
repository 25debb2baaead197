package handlers

import (
	"net/http"
	"strings"
	"testing"
)

// With -cookie-secure the app is HTTPS-only, and says so with HSTS; never
// to a loopback host, where the pin would force HTTPS on every local port,
// and never without -cookie-secure (plain HTTP must stay reachable).
func TestHSTSOnlyWithSecureCookieAndNotOnLoopback(t *testing.T) {
	secure := newTestApp(t, func(a *App) { a.Sessions.Cookie = SessionCookie(true) })
	plain := newTestAppOn(t, secure.redis)
	for _, tc := range []struct {
		name string
		app  *testApp
		host string
		want string
	}{
		{"secure cookie, public host", secure, "sessions.example.com", hstsValue},
		{"secure cookie, public host and port", secure, "sessions.example.com:8443", hstsValue},
		{"secure cookie, localhost", secure, "localhost:8443", ""},
		{"secure cookie, 127.0.0.1", secure, "127.0.0.1:8443", ""},
		{"secure cookie, ::1", secure, "[::1]:8443", ""},
		{"plain cookie, public host", plain, "sessions.example.com", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/login", "/healthz", "/no-such-page"} {
				req, _ := http.NewRequest(http.MethodGet, tc.app.srv.URL+path, nil)
				req.Host = tc.host
				r := tc.app.do(tc.app.client(), req)
				if got := r.header.Get("Strict-Transport-Security"); got != tc.want {
					t.Errorf("%s: Strict-Transport-Security %q, want %q", path, got, tc.want)
				}
			}
		})
	}
	if hstsValue != "max-age=31536000" {
		t.Errorf("HSTS %q: a year, no includeSubDomains", hstsValue)
	}
}

// A request id from a client that is not a trusted proxy is replaced; one
// that could forge a log line or a header is refused even from a proxy.
func TestRequestIDIsKeptOnlyFromATrustedProxy(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.TrustedProxies, _ = ParseTrustedProxies("127.0.0.1/32") })
	untrusted := newTestAppOn(t, ta.redis)
	for _, tc := range []struct {
		name string
		app  *testApp
		sent string
		keep bool
	}{
		{"trusted proxy", ta, "nginx-7f3a9c", true},
		{"trusted proxy, id with a space", ta, "two words", false},
		{"trusted proxy, id too long", ta, strings.Repeat("x", 200), false},
		{"untrusted client", untrusted, "nginx-7f3a9c", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.app.get(tc.app.client(), "/healthz", "X-Request-Id", tc.sent)
			got := r.header.Get("X-Request-Id")
			if (got == tc.sent) != tc.keep || got == "" {
				t.Errorf("sent %q, answered %q; kept: want %v", tc.sent, got, tc.keep)
			}
		})
	}
}

// -ready-without-redis: while Redis cannot serve, /readyz still answers 200
// (the body names the trouble), so a load balancer in front of instances
// that share one Redis keeps them and users see the app's own 503 page;
// without it, /readyz is 503. Pages are 503 either way.
func TestReadyWithoutRedisKeepsReadinessThroughAnOutage(t *testing.T) {
	shared := newTestApp(t, func(a *App) { a.ReadyWithoutRedis = true })
	strict := newTestAppOn(t, shared.redis)
	for _, ta := range []*testApp{shared, strict} {
		if r := ta.get(ta.client(), "/readyz"); r.status != http.StatusOK || !strings.HasPrefix(r.body, "ready") {
			t.Fatalf("readyz with Redis up: %d %q", r.status, r.body)
		}
	}
	shared.redis.Stop()
	r := shared.get(shared.client(), "/readyz")
	if r.status != http.StatusOK || !strings.Contains(r.body, "redis unavailable") {
		t.Errorf("-ready-without-redis, Redis stopped: readyz %d %q, want 200 naming the trouble", r.status, r.body)
	}
	if r := strict.get(strict.client(), "/readyz"); r.status != http.StatusServiceUnavailable {
		t.Errorf("default, Redis stopped: readyz %d, want 503", r.status)
	}
	if r := shared.get(shared.client(), "/count"); r.status != http.StatusServiceUnavailable {
		t.Errorf("-ready-without-redis, Redis stopped: /count %d, want the app's 503", r.status)
	}
}

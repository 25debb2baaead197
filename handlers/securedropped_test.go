package handlers

import (
	"net/http"
	"strings"
	"testing"
)

// With -cookie-secure, a browser that opened the app over plain HTTP at an
// address that is not localhost drops the session cookie, so every count
// starts a new session and shows 1. The count page says so, as the lab's
// Secure section does, instead of only "kept in an anonymous session".
func TestCountSaysWhenTheBrowserDropsTheSecureCookie(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Sessions.Cookie.Secure = true })
	count := func(host string, cookie bool) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ta.srv.URL+"/count", nil)
		req.Host = host
		if cookie {
			req.AddCookie(&http.Cookie{Name: ta.app.Sessions.Cookie.Name, Value: "a-cookie-it-kept"})
		}
		r := ta.do(&http.Client{}, req)
		if r.status != http.StatusOK {
			t.Fatalf("GET /count at %s: %d", host, r.status)
		}
		return r.body
	}
	const notice = `data-testid="cookie-dropped"`
	if b := count("192.0.2.10:8080", false); !strings.Contains(b, notice) {
		t.Error("plain HTTP at a network address, no cookie: the page does not say the browser drops the Secure cookie")
	}
	for _, host := range []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "app.localhost"} {
		if b := count(host, false); strings.Contains(b, notice) {
			t.Errorf("at %s (a secure context over HTTP) the page says the cookie is dropped", host)
		}
	}
	if b := count("192.0.2.10:8080", true); strings.Contains(b, notice) {
		t.Error("a request that brought a cookie says the cookie is dropped")
	}

	plain := newTestApp(t)
	req, _ := http.NewRequest(http.MethodGet, plain.srv.URL+"/count", nil)
	req.Host = "192.0.2.10:8080"
	if r := plain.do(&http.Client{}, req); strings.Contains(r.body, notice) {
		t.Error("without -cookie-secure the page says the cookie is dropped")
	}
}

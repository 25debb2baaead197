package proxy

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// The built binary, configured as behind an HTTPS reverse proxy: the cookie
// is __Host-session and Secure, and the throttle counts the address the
// trusted proxy forwarded.
func TestBinaryBehindTLSProxy(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	app := apptest.Start(t, bin, "-redis", rs.URL(), "-cookie-secure", "-trusted-proxies", "127.0.0.1/32,::1")
	c := apptest.Client(t)

	resp, err := c.Get(app.URL + "/count")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	raw := strings.Join(resp.Header.Values("Set-Cookie"), "\n")
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__Host-session" {
			session = ck
		}
	}
	if session == nil || !session.Secure || !session.HttpOnly || session.Path != "/" || session.Domain != "" ||
		session.SameSite != http.SameSiteLaxMode {
		t.Errorf("Set-Cookie %q: want __Host-session; Path=/; HttpOnly; Secure; SameSite=Lax, no Domain", raw)
	}

	if code := apptest.PostForm(t, c, app.URL+"/register", url.Values{"username": {"alice"}, "password": {"alice-password"}}); code != http.StatusSeeOther {
		t.Fatalf("register: %d", code)
	}
	login := func(from, password string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, app.URL+"/login",
			strings.NewReader(url.Values{"username": {"alice"}, "password": {password}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "6.6.6.6, "+from) // the left part is the client's own claim
		resp, err := apptest.Client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for i := range 5 {
		if r := login("192.0.2.1", "wrong-password"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password #%d: %d", i+1, r.StatusCode)
		}
	}
	r := login("192.0.2.1", "alice-password")
	if secs, _ := strconv.Atoi(r.Header.Get("Retry-After")); r.StatusCode != http.StatusTooManyRequests || secs < 1 {
		t.Errorf("sixth try: %d, Retry-After %q; want 429 with a delay", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := login("192.0.2.2", "alice-password"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("the owner from another address: %d, want 303", r.StatusCode)
	}
	if !strings.Contains(app.Log(), `msg="login throttled" refused=1 clients=1 top="192.0.2.1 (1)"`) {
		t.Errorf("no log line for the throttled login\n%s", app.Log())
	}
}

package handlers

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/throttle"
)

// validHeaderValue is what net/http's client agrees to send in a header.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// noJar is a client that keeps no cookies and follows no redirects: each
// fuzz input is the whole of what the server sees.
func noJar() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// lenientThrottle lets the fuzzer through the login throttle (it still runs,
// with keys derived from fuzzed names), so bodies reach the password check,
// and sets no limit on new anonymous sessions.
func lenientThrottle(tb testing.TB, ta *testApp) {
	tb.Helper()
	rdb := ta.redis.Client(tb)
	many := throttle.Limit{Max: 1 << 30, Window: time.Minute}
	ta.app.Throttle = throttle.New(rdb, throttle.Policy{Pair: many, Address: many, Account: many, Known: time.Minute})
}

// FuzzAuthForm posts arbitrary bodies with arbitrary content types to
// /login and /register: the answer is always one of the form's own
// statuses, never a server error.
func FuzzAuthForm(f *testing.F) {
	const form = "application/x-www-form-urlencoded"
	f.Add(false, form, []byte("username=alice&password=correct-horse"))
	f.Add(true, form, []byte("username=alice&password=correct-horse"))
	f.Add(false, form, []byte("username=%zz&password=x"))
	f.Add(true, "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nbob\r\n--x--\r\n"))
	f.Add(false, "", []byte("username=alice"))
	f.Add(true, "text/plain", []byte("\x00\xff"))
	ta := newTestApp(f)
	lenientThrottle(f, ta)
	ta.register(ta.client(), "alice", "correct-horse")
	allowed := map[string]map[int]bool{
		"/login":    {303: true, 400: true, 401: true, 413: true, 415: true, 422: true, 429: true},
		"/register": {303: true, 400: true, 409: true, 413: true, 415: true, 422: true},
	}
	c := noJar()
	f.Fuzz(func(t *testing.T, register bool, contentType string, body []byte) {
		if !validHeaderValue(contentType) {
			return
		}
		path := "/login"
		if register {
			path = "/register"
		}
		req, err := http.NewRequest(http.MethodPost, ta.srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !allowed[path][resp.StatusCode] {
			t.Fatalf("POST %s (%q, %q): status %d\n%s", path, contentType, body, resp.StatusCode, b)
		}
	})
}

// FuzzSessionCookie sends arbitrary Cookie headers: never a server error,
// and a session only for exactly the token the server issued. A new
// session never takes a token the client proposed.
func FuzzSessionCookie(f *testing.F) {
	f.Add("")
	f.Add("session=")
	f.Add("session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("session=../../etc/passwd; other=1")
	f.Add(`session="quoted"; session=second`)
	f.Add("session=" + strings.Repeat("x", 5000))
	f.Add("; ; ;=;session")
	ta := newTestApp(f)
	// Each input without the issued token starts a new session from one
	// address: past the default limit (600 in 10 minutes, a few seconds of
	// fuzzing) /count rightly answers 429, which is not what this checks.
	lenientThrottle(f, ta)
	owner := ta.client()
	ta.register(owner, "owner", "owner-password")
	issued := ta.token(owner)
	name := ta.app.Sessions.Cookie.Name
	c := noJar()
	get := func(t *testing.T, path, cookie string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, ta.srv.URL+path, nil)
		req.Header.Set("Cookie", cookie)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s with Cookie %q: %v", path, cookie, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header, string(b)
	}
	f.Fuzz(func(t *testing.T, header string) {
		// The input alone, and the input glued to the real token.
		for _, cookie := range []string{header, name + "=" + issued + header} {
			if !validHeaderValue(cookie) {
				continue
			}
			presented := ""
			if ck, err := (&http.Request{Header: http.Header{"Cookie": {cookie}}}).Cookie(name); err == nil {
				presented = ck.Value
			}
			status, _, body := get(t, "/profile", cookie)
			switch {
			case presented == issued && status != http.StatusOK:
				t.Fatalf("Cookie %q carries the issued token, but /profile: %d", cookie, status)
			case presented != issued && (status != http.StatusUnauthorized || strings.Contains(body, `data-testid="hello"`)):
				t.Fatalf("Cookie %q (token %q, not issued): /profile %d, want 401", cookie, presented, status)
			}
			if presented == issued {
				continue
			}
			status, h, _ := get(t, "/count", cookie)
			if status != http.StatusOK {
				t.Fatalf("Cookie %q: /count %d, want 200", cookie, status)
			}
			ck := cookieNamed(h, name)
			if ck == nil || ck.Value == presented || !validToken(ck.Value) {
				t.Fatalf("Cookie %q: /count set %q, want a fresh server-made token", cookie, h.Values("Set-Cookie"))
			}
		}
	})
}

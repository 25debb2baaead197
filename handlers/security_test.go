package handlers

// The security checklist of issue 4, point by point, against a real Redis.
// Each test names the rule it proves; each can fail.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// cookieNamed is the cookie a response sets under name, or nil.
func cookieNamed(h http.Header, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: h}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// clientWithToken is a browser that presents token as its session cookie.
func (ta *testApp) clientWithToken(token string) *http.Client {
	ta.t.Helper()
	c := ta.client()
	u, _ := url.Parse(ta.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: ta.app.Sessions.Cookie.Name, Value: token}})
	return c
}

// anonymousSession gives c a session (one counted view) and returns its token.
func (ta *testApp) anonymousSession(c *http.Client) string {
	ta.t.Helper()
	if r := ta.get(c, "/count"); r.status != http.StatusOK {
		ta.t.Fatalf("GET /count: %d", r.status)
	}
	token := ta.token(c)
	if token == "" {
		ta.t.Fatal("GET /count set no session cookie")
	}
	return token
}

// keyExists reports whether sess:<token> is in Redis.
func (ta *testApp) keyExists(token string) bool {
	ta.t.Helper()
	return ta.redis.MustDo("EXISTS", sessions.Key(token)) == "1"
}

// editSession rewrites the stored session JSON in place (keeping its TTL),
// the way time passing would change what the server reads.
func (ta *testApp) editSession(token string, edit func(values map[string]any, env map[string]any)) {
	ta.t.Helper()
	var env map[string]any
	if err := json.Unmarshal([]byte(ta.redis.MustDo("GET", sessions.Key(token))), &env); err != nil {
		ta.t.Fatalf("stored session: %v", err)
	}
	edit(env["values"].(map[string]any), env)
	b, _ := json.Marshal(env)
	ta.redis.MustDo("SET", sessions.Key(token), string(b), "KEEPTTL")
}

var viewCountRe = regexp.MustCompile(`data-testid="view-count"[^>]*>(\d+)<`)

// countShown is the number in data-testid="view-count".
func countShown(t *testing.T, body string) string {
	t.Helper()
	m := viewCountRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no view count in the page")
	}
	return m[1]
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// Token renewal on every privilege change: the pre-change token finds no
// session afterwards and its key is gone from Redis.
func TestTokenRenewedOnPrivilegeChange(t *testing.T) {
	ta := newTestApp(t)
	ta.register(ta.client(), "carol", "carol-password")
	login := url.Values{"username": {"carol"}, "password": {"carol-password"}}
	tests := []struct {
		name   string
		before func(c *http.Client) // the session the change starts from
		change func(c *http.Client) response
	}{
		{"login", func(c *http.Client) { ta.anonymousSession(c) },
			func(c *http.Client) response { return ta.post(c, "/login", login) }},
		{"register", func(c *http.Client) { ta.anonymousSession(c) },
			func(c *http.Client) response {
				return ta.post(c, "/register", url.Values{"username": {"dave"}, "password": {"dave-password"}})
			}},
		{"logout", func(c *http.Client) { ta.post(c, "/login", login) },
			func(c *http.Client) response { return ta.post(c, "/logout", nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ta.client()
			tt.before(c)
			before := ta.token(c)
			if before == "" {
				t.Fatal("no session before the change")
			}
			r := tt.change(c)
			if r.status != http.StatusSeeOther {
				t.Fatalf("%s: status %d\n%s", tt.name, r.status, r.body)
			}
			ck := cookieNamed(r.header, ta.app.Sessions.Cookie.Name)
			switch {
			case ck == nil:
				t.Fatalf("%s set no session cookie", tt.name)
			case tt.name == "logout" && (ck.MaxAge >= 0 || ck.Value != ""):
				t.Errorf("logout did not clear the cookie: %q", r.header.Values("Set-Cookie"))
			case tt.name != "logout" && (ck.Value == before || !validToken(ck.Value)):
				t.Errorf("token after %s = %q, want a new one", tt.name, ck.Value)
			}
			if ta.keyExists(before) {
				t.Errorf("the key of the pre-%s token still exists", tt.name)
			}
			// It does not open the profile: 401, or, right after a renewal,
			// 409 "Session renewed" (the browser is logged in under the new one).
			old := ta.clientWithToken(before)
			if r := ta.get(old, "/profile"); r.status != http.StatusUnauthorized &&
				!(r.status == http.StatusConflict && tt.name != "logout" && len(r.header.Values("Set-Cookie")) == 0) {
				t.Errorf("the pre-%s token still opens /profile: %d", tt.name, r.status)
			}
			// A request still carrying the old token right after the change
			// does nothing (409, no cookie: it must not overwrite the new
			// one); later ones start a fresh session. Never the old one.
			r = ta.get(old, "/count")
			switch {
			case r.status == http.StatusConflict && len(r.header.Values("Set-Cookie")) == 0:
			case r.status == http.StatusOK && countShown(t, r.body) == "1" && ta.token(old) != before:
			default:
				t.Errorf("the pre-%s token on /count: status %d, Set-Cookie %q", tt.name, r.status, r.header.Values("Set-Cookie"))
			}
			if ta.keyExists(before) {
				t.Errorf("a request with the pre-%s token brought its key back", tt.name)
			}
		})
	}
}

// A cookie the server did not issue, or no longer honours, starts a fresh
// anonymous session: never a 500, never accepted, never adopted.
func TestUnknownSessionCookies(t *testing.T) {
	ta := newTestApp(t)
	live := ta.client()
	ta.register(live, "erin", "erin-password")
	n := 0
	issued := func() string { // a genuine logged-in session
		n++
		c := ta.client()
		ta.register(c, "user"+strconv.Itoa(n), "a-password")
		return ta.token(c)
	}
	tests := []struct {
		name  string
		token func() string
	}{
		{"never issued (well formed)", func() string { return strings.Repeat("A", 43) }},
		{"malformed", func() string { return "../../etc/passwd;*" }},
		{"one character short", func() string { return ta.token(live)[:42] }},
		{"oversized", func() string { return strings.Repeat("x", 4000) }},
		{"expired in Redis (key gone)", func() string {
			tok := issued()
			ta.redis.MustDo("DEL", sessions.Key(tok))
			return tok
		}},
		{"past its absolute deadline", func() string {
			tok := issued()
			ta.editSession(tok, func(_, env map[string]any) { env["deadline"] = stamp(time.Now().Add(-time.Second)) })
			return tok
		}},
		{"idle too long", func() string {
			tok := issued()
			ta.editSession(tok, func(v, _ map[string]any) { v["seen"] = stamp(time.Now().Add(-ta.app.Idle - time.Minute)) })
			return tok
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token()
			c := ta.client() // no jar cookie: the raw header below is all it sends
			cookie := ta.app.Sessions.Cookie.Name + "=" + tok
			r := ta.get(c, "/profile", "Cookie", cookie)
			if r.status != http.StatusUnauthorized || strings.Contains(r.body, `data-testid="hello"`) {
				t.Fatalf("GET /profile: %d, want 401 and no profile", r.status)
			}
			r = ta.get(c, "/count", "Cookie", cookie)
			if r.status != http.StatusOK || countShown(t, r.body) != "1" {
				t.Fatalf("GET /count: %d, want 200 and a fresh count of 1", r.status)
			}
			fresh := cookieNamed(r.header, ta.app.Sessions.Cookie.Name)
			if fresh == nil || fresh.Value == tok || !validToken(fresh.Value) {
				t.Errorf("the session was not replaced: Set-Cookie %q", r.header.Values("Set-Cookie"))
			}
			if ta.keyExists(tok) {
				t.Errorf("a key exists for the presented token after the request")
			}
		})
	}
	if r := ta.get(live, "/profile"); r.status != http.StatusOK {
		t.Errorf("the genuine session stopped working: %d", r.status)
	}
}

// The cookie as main configures it (handlers.SessionCookie), with and
// without COOKIE_SECURE.
func TestSessionCookieAttributes(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run("secure="+strconv.FormatBool(secure), func(t *testing.T) {
			ta := newTestApp(t, func(a *App) { a.Sessions.Cookie = SessionCookie(secure) })
			r := ta.get(ta.client(), "/count")
			raw := strings.Join(r.header.Values("Set-Cookie"), "\n")
			wantName := map[bool]string{false: "session", true: "__Host-session"}[secure]
			ck := cookieNamed(r.header, wantName)
			if ck == nil {
				t.Fatalf("no %s cookie in %q", wantName, raw)
			}
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
				t.Errorf("cookie %q: want HttpOnly, SameSite=Lax, Path=/ and no Domain", raw)
			}
			if ck.Secure != secure {
				t.Errorf("cookie %q: Secure = %v, want %v", raw, ck.Secure, secure)
			}
			if ck.MaxAge != 0 || !ck.Expires.IsZero() {
				t.Errorf("cookie %q persists without remember me", raw)
			}
		})
	}
}

// Both timeouts are enforced by the server and shown on the profile.
func TestIdleAndAbsoluteTimeouts(t *testing.T) {
	const idle, lifetime = 10 * time.Minute, 2 * time.Hour
	ta := newTestAppWith(t, redistest.Start(t), func(c *Config) { c.Idle = idle; c.Lifetime = lifetime })
	c := ta.client()
	ta.register(c, "frank", "frank-password")
	token := ta.token(c)

	t.Run("the profile shows both deadlines", func(t *testing.T) {
		r := ta.get(c, "/profile")
		var env struct {
			Deadline time.Time
			Values   struct{ Seen time.Time }
		}
		if err := json.Unmarshal([]byte(ta.redis.MustDo("GET", sessions.Key(token))), &env); err != nil {
			t.Fatal(err)
		}
		shown := func(testid string) string {
			m := regexp.MustCompile(`data-testid="` + testid + `">\s*<time datetime="([^"]+)"`).FindStringSubmatch(r.body)
			if m == nil {
				t.Fatalf("no %s on the profile", testid)
			}
			return m[1]
		}
		const sec = "2006-01-02T15:04:05Z"
		if got, want := shown("idle-deadline"), env.Values.Seen.Add(idle).UTC().Format(sec); got != want {
			t.Errorf("idle deadline shown %s, want last activity + %v = %s", got, idle, want)
		}
		if got, want := shown("abs-deadline"), env.Deadline.UTC().Format(sec); got != want {
			t.Errorf("absolute deadline shown %s, want the stored %s", got, want)
		}
		if d := env.Deadline.Sub(env.Values.Seen); d > lifetime || d < lifetime-time.Minute {
			t.Errorf("stored deadline is %v after login, want the %v lifetime", d, lifetime)
		}
		// "Created" is the anonymous session's start; the lifetime is the login's.
		since := regexp.MustCompile(`whatever you do: 2 h after you logged in, at <time datetime="([^"]+)"`).FindStringSubmatch(r.body)
		if want := env.Deadline.Add(-lifetime).UTC().Format(sec); since == nil || since[1] != want {
			t.Errorf("the profile does not say the %v lifetime started at the login, %s: %v", lifetime, want, since)
		}
		ttl, _ := strconv.Atoi(ta.redis.MustDo("TTL", sessions.Key(token)))
		if ttl <= 0 || ttl > int(idle.Seconds()) {
			t.Errorf("key TTL %ds, want at most the idle timeout (%v): Redis drops an idle session itself", ttl, idle)
		}
	})
	t.Run("activity within the idle timeout keeps the session", func(t *testing.T) {
		ta.editSession(token, func(v, _ map[string]any) { v["seen"] = stamp(time.Now().Add(-idle + time.Minute)) })
		if r := ta.get(c, "/profile"); r.status != http.StatusOK {
			t.Fatalf("profile %d, want 200", r.status)
		}
	})
	t.Run("idle past the timeout ends the session", func(t *testing.T) {
		ta.editSession(token, func(v, _ map[string]any) { v["seen"] = stamp(time.Now().Add(-idle - time.Second)) })
		if r := ta.get(c, "/profile"); r.status != http.StatusUnauthorized {
			t.Errorf("profile %d, want 401", r.status)
		}
		if ta.keyExists(token) {
			t.Error("the idle session's key was not deleted")
		}
		if !strings.Contains(ta.logs.String(), `msg="session expired" session=`+ta.app.LogID(token)) {
			t.Error("no log line for the expired session")
		}
	})
	t.Run("past the absolute lifetime ends an active session", func(t *testing.T) {
		c := ta.client()
		ta.register(c, "grace", "grace-password")
		token := ta.token(c)
		ta.editSession(token, func(v, env map[string]any) {
			v["seen"] = stamp(time.Now())
			env["deadline"] = stamp(time.Now().Add(-time.Second))
		})
		if r := ta.get(c, "/profile"); r.status != http.StatusUnauthorized {
			t.Errorf("profile %d, want 401", r.status)
		}
		if ta.keyExists(token) {
			t.Error("the expired session's key was not deleted")
		}
	})
	t.Run("an htmx request of an ended session is sent to log in", func(t *testing.T) {
		c := ta.client()
		ta.register(c, "heidi", "heidi-password")
		ta.redis.MustDo("DEL", sessions.Key(ta.token(c)))
		r := ta.get(c, "/profile", "HX-Request", "true")
		if r.status != http.StatusUnauthorized || r.header.Get("HX-Redirect") != "/login?from=expired" {
			t.Errorf("status %d, HX-Redirect %q", r.status, r.header.Get("HX-Redirect"))
		}
	})
}

// Logout clears site data; nothing that shows session data is cached.
func TestLogoutClearsSiteDataAndPagesAreNotStored(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "ivan", "ivan-password")
	for _, path := range []string{"/", "/login", "/register", "/profile", "/count", "/redis", "/no-such-page"} {
		for _, htmx := range []string{"", "true"} {
			r := ta.get(c, path, "HX-Request", htmx)
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("GET %s (htmx=%q): Cache-Control %q, want no-store", path, htmx, cc)
			}
		}
	}
	for _, htmx := range []string{"", "true"} {
		c := ta.client()
		ta.post(c, "/login", url.Values{"username": {"ivan"}, "password": {"ivan-password"}})
		r := ta.post(c, "/logout", nil, "HX-Request", htmx)
		if got := r.header.Get("Clear-Site-Data"); got != `"cookies"` {
			t.Errorf("logout (htmx=%q): Clear-Site-Data %q, want \"cookies\"", htmx, got)
		}
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("logout (htmx=%q): Cache-Control %q", htmx, cc)
		}
	}
}

var logID = regexp.MustCompile(`^[0-9a-f]{12}$`)

// Logs follow a session by a short salted hash, never by its token.
func TestSessionLogLinesCarryAHashNotTheToken(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	anon := ta.anonymousSession(c)
	ta.register(c, "judy", "judy-password")
	loggedIn := ta.token(c)
	ta.post(c, "/logout", nil)
	logs := ta.logs.String()

	for _, want := range []string{
		`msg="session created" session=` + ta.app.LogID(anon),
		`msg="session renewed" old=` + ta.app.LogID(anon) + " session=" + ta.app.LogID(loggedIn),
		`msg="session destroyed" session=` + ta.app.LogID(loggedIn),
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("no log line %q in\n%s", want, logs)
		}
	}
	for _, tok := range []string{anon, loggedIn} {
		if id := ta.app.LogID(tok); !logID.MatchString(id) {
			t.Errorf("LogID = %q, want 12 hex digits", id)
		}
		if strings.Contains(logs, tok) || strings.Contains(logs, tok[:16]) {
			t.Errorf("the logs contain a session token")
		}
	}
	if sessions.LogID("other-salt").Of(anon) == ta.app.LogID(anon) {
		t.Error("the log id does not depend on the salt")
	}
}

// Every state-changing route refuses cross-site requests with a clear page
// and changes nothing. The routes come from the route table itself, so a new
// POST route is covered without anyone adding it here.
func TestCrossSiteRequestsAreRefused(t *testing.T) {
	// Every optional route switched on.
	ta := newTestApp(t, func(a *App) {
		a.Restart = func() { t.Error("a blocked request restarted the server") }
		a.Lab = true
	})
	attacks := [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Sec-Fetch-Site", "same-site"},
		{"Origin", "https://evil.example"},
	}
	_, patterns := ta.app.routes()
	walked := map[string]bool{}
	users := 0
	for _, pattern := range patterns {
		method, route, ok := stateChanging(pattern)
		if !ok {
			continue
		}
		walked[method+" "+route] = true
		for _, h := range attacks {
			t.Run(method+" "+route+" with "+h[0]+": "+h[1], func(t *testing.T) {
				// Its own user and sessions: a request that slipped
				// through fails this case alone.
				users++
				user := fmt.Sprintf("kim%d", users)
				password := user + "-password"
				owner, phone := ta.client(), ta.client()
				ta.register(owner, user, password)
				ta.login(phone, user, password)
				token, phoneToken := ta.token(owner), ta.token(phone)
				// A wildcard gets the id of the user's other session, so a
				// revoke that slipped through would show.
				path := wildcard.ReplaceAllStringFunc(route, func(w string) string {
					if w == "{$}" {
						return ""
					}
					return sessions.ID(phoneToken)
				})
				// Forms that would succeed if the request were let through.
				forms := map[string]url.Values{
					"/login":    {"username": {user}, "password": {password}},
					"/register": {"username": {"mallory"}, "password": {"mallory-password"}},
					"/password": {"current": {password}, "new": {"mallory-password"}},
					"/lab/use":  {"id": {phoneToken}},
				}
				req, _ := http.NewRequest(method, ta.srv.URL+path, strings.NewReader(forms[path].Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set(h[0], h[1])
				r := ta.do(owner, req)
				if r.status != http.StatusForbidden || !strings.Contains(r.body, `data-testid="problem-title">Request blocked`) ||
					!strings.Contains(r.body, "came from another site") {
					t.Fatalf("status %d, want 403 with the \"Request blocked\" page", r.status)
				}
				if ta.token(owner) != token || !ta.keyExists(token) || !ta.keyExists(phoneToken) {
					t.Error("the blocked request changed or ended a session")
				}
				if ta.redis.MustDo("EXISTS", "user:mallory") != "0" {
					t.Error("a blocked registration created the account")
				}
				if r := ta.post(ta.client(), "/login", forms["/login"]); r.status != http.StatusSeeOther {
					t.Errorf("after the blocked request the user's password no longer works: %d", r.status)
				}
			})
		}
	}
	// Dozens refused, one log line: a page on any site can make its
	// visitors' browsers send these.
	if n := strings.Count(ta.logs.String(), `msg="cross-origin request blocked"`); n != 1 {
		t.Errorf("%d log lines for the blocked requests of this test (within a minute), want 1", n)
	}
	// The walk itself must see the routes known today, or it proves nothing.
	for _, route := range []string{"POST /login", "POST /logout", "POST /register", "POST /password",
		"POST /session/touch", "POST /sessions/revoke-others", "POST /restart", "POST /sessions/{id}/revoke",
		"POST /lab/read", "POST /lab/use", "POST /lab/switch/{switch}"} {
		if !walked[route] {
			t.Errorf("the route walk missed %s (walked %v)", route, walked)
		}
	}
	creds := url.Values{"username": {"kim1"}, "password": {"kim1-password"}}
	t.Run("a same-origin POST passes", func(t *testing.T) {
		r := ta.post(ta.client(), "/login", creds, "Sec-Fetch-Site", "same-origin", "Origin", ta.srv.URL)
		if r.status != http.StatusSeeOther {
			t.Errorf("status %d, want 303", r.status)
		}
	})
}

// Cross-origin requests blocked are logged a line a minute that says what
// happened since the last line: how many were blocked, from how many origins,
// and the origins blocked most, not one request's origin beside everyone's
// count. An Origin is the sender's to write: a line names it as
// scheme://host[:port] only, cut to maxOriginLen, and a header that is no
// origin as such; of the rest it names the latest request's method, route
// and Sec-Fetch-Site, never its path, query or Referer, which may carry a
// session token.
func TestCrossOriginLinesSayFromWhichOrigins(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "gus", "gus-password")
	token := ta.token(c)
	block := func(origin string, times int) {
		t.Helper()
		for range times {
			req, _ := http.NewRequest(http.MethodPost, ta.srv.URL+revokePath(token)+"?session="+token, nil)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			if origin != "" {
				req.Header.Set("Origin", origin)
			}
			req.Header.Set("Referer", "https://evil.example/steal?session="+token)
			if r := ta.do(c, req); r.status != http.StatusForbidden {
				t.Fatalf("a cross-site POST from %.40q: %d, want 403", origin, r.status)
			}
		}
	}
	lines := func() []string {
		var ls []string
		for line := range strings.Lines(ta.logs.String()) {
			if lineHas(line, "cross-origin request blocked") {
				ls = append(ls, line)
			}
		}
		return ls
	}

	block("https://evil.example", 1)
	if ls := lines(); len(ls) != 1 || !lineHas(ls[0], "", "blocked=1", "origins=1", `top="https://evil.example (1)"`,
		"last_method=POST", "last_route=/sessions/{id}/revoke", "last_sec_fetch_site=cross-site") {
		t.Fatalf("after the first block, want one line with blocked=1 origins=1 top=\"https://evil.example (1)\":\n%s", ta.logs.String())
	}
	long := "https://" + strings.Repeat("a", 5000) + ".example"
	block("https://evil.example", 2)
	block("https://evil.example:443/steal?session="+token, 1) // a path and query are no origin's: the same site
	block("null", 2)                                          // a sandboxed page, a redirect
	block("", 1)                                              // Sec-Fetch-Site alone
	block(long, 1)
	block("https://x.example (99), https://y.example", 1) // would forge the list
	if n := len(lines()); n != 1 {
		t.Fatalf("%d lines within the minute, want 1:\n%s", n, ta.logs.String())
	}
	ta.app.tallies.backdate("cross-origin", perMinuteEvery)
	block("https://evil.example", 1)
	ls := lines()
	if len(ls) != 2 {
		t.Fatalf("%d lines a minute later, want 2:\n%s", len(ls), ta.logs.String())
	}
	if want := []string{"blocked=9", "origins=6", `top="https://evil.example (3), null (2), https://evil.example:443 (1)"`,
		"last_method=POST", "last_route=/sessions/{id}/revoke", "last_sec_fetch_site=cross-site"}; !lineHas(ls[1], "", want...) {
		t.Errorf("second line:\n%s\nwant %v", ls[1], want)
	}
	logs := ta.logs.String()
	for _, l := range ls {
		for _, f := range []string{" origin=", " method=", " route=", " sec_fetch_site=", "referer", "path="} {
			if strings.Contains(strings.ToLower(l), f) {
				t.Errorf("a line names one request's %s as if it stood for all, or a path:\n%s", strings.Trim(f, " ="), l)
			}
		}
		if len(l) > 500 {
			t.Errorf("a line of %d bytes: an origin is cut to %d", len(l), maxOriginLen)
		}
	}
	if strings.Contains(logs, token) || strings.Contains(logs, strings.Repeat("a", maxOriginLen+1)) || strings.Contains(logs, "y.example") {
		t.Errorf("the log holds a token, a whole long origin or a forged one:\n%s", logs)
	}
}

// How a line names a request's Origin: what a browser sends (scheme, host
// and port, or null) as it is; anything else cut to the origin it names,
// or said to be none; never longer than maxOriginLen and a mark.
func TestBlockedOriginNames(t *testing.T) {
	long := "https://" + strings.Repeat("a", 300) + ".example"
	for _, tc := range []struct{ header, want string }{
		{"https://evil.example", "https://evil.example"},
		{"http://192.0.2.1:8080", "http://192.0.2.1:8080"},
		{"https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"},
		{"chrome-extension://abcdef", "chrome-extension://abcdef"},
		{"null", "null"},
		{"", "(no Origin)"},
		{"https://evil.example/path/TOKEN?q=TOKEN#TOKEN", "https://evil.example"},
		{"https://user:TOKEN@evil.example", "https://evil.example"},
		{"https://x.example (99), https://y.example", "(not an origin)"},
		{"evil.example", "(not an origin)"},
		{"https://evil.example\n", "(not an origin)"},
		{"https://ev\"il.example", "(not an origin)"},
		{long, long[:maxOriginLen] + "…"},
	} {
		if got := blockedOrigin(tc.header); got != tc.want {
			t.Errorf("Origin %.60q: %.60q, want %.60q", tc.header, got, tc.want)
		}
	}
}

var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// stateChanging splits a mux pattern ("POST /sessions/{id}/revoke") and says
// whether it can change state: any method but GET and HEAD, and a pattern
// without a method, which takes POSTs too (it is tried with POST).
func stateChanging(pattern string) (method, path string, ok bool) {
	method, path, found := strings.Cut(pattern, " ")
	if !found {
		method, path = http.MethodPost, pattern
	}
	return method, path, method != http.MethodGet && method != http.MethodHead
}

var scriptTag = regexp.MustCompile(`(?i)<script\b[^>]*>`)

// checkHTMLHeaders asserts the security headers of one HTML response.
func checkHTMLHeaders(t *testing.T, what string, r response) {
	t.Helper()
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("%s: Content-Type %q, want HTML", what, r.header.Get("Content-Type"))
		return
	}
	directives := map[string]string{}
	for d := range strings.SplitSeq(r.header.Get("Content-Security-Policy"), ";") {
		if f := strings.Fields(d); len(f) > 0 {
			directives[f[0]] = strings.Join(f[1:], " ")
		}
	}
	scripts, ok := directives["script-src"]
	if !ok {
		scripts = directives["default-src"]
	}
	if scripts == "" || strings.Contains(scripts, "unsafe-inline") || strings.Contains(scripts, "unsafe-eval") || strings.Contains(scripts, "*") {
		t.Errorf("%s: CSP script sources %q, want only 'self'-like sources, no unsafe-inline", what, scripts)
	}
	if directives["frame-ancestors"] != "'none'" {
		t.Errorf("%s: CSP frame-ancestors %q, want 'none'", what, directives["frame-ancestors"])
	}
	if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("%s: X-Content-Type-Options %q", what, got)
	}
	if got := r.header.Get("Referrer-Policy"); got == "" || got == "unsafe-url" {
		t.Errorf("%s: Referrer-Policy %q", what, got)
	}
	for _, tag := range scriptTag.FindAllString(r.body, -1) {
		if !strings.Contains(tag, "src=") {
			t.Errorf("%s: inline script %s", what, tag)
		}
	}
}

// Every HTML response, error pages included, carries the security headers.
func TestSecurityHeadersOnEveryHTMLResponse(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "leo", "leo-password")
	anon := ta.client()
	put, _ := http.NewRequest(http.MethodPut, ta.srv.URL+"/login", nil)
	big, _ := http.NewRequest(http.MethodPost, ta.srv.URL+"/login", strings.NewReader("username="+strings.Repeat("a", maxFormBytes)))
	big.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	type reply struct {
		r      response
		status int
	}
	cases := map[string]reply{
		"home":             {ta.get(c, "/"), http.StatusOK},
		"login form":       {ta.get(anon, "/login"), http.StatusOK},
		"register form":    {ta.get(anon, "/register"), http.StatusOK},
		"profile":          {ta.get(c, "/profile"), http.StatusOK},
		"profile fragment": {ta.get(c, "/profile", "HX-Request", "true"), http.StatusOK},
		"login prompt":     {ta.get(anon, "/profile"), http.StatusUnauthorized},
		"count":            {ta.get(c, "/count"), http.StatusOK},
		"redis page":       {ta.get(c, "/redis"), http.StatusOK},
		"redis panel":      {ta.get(c, "/redis", "HX-Request", "true", "HX-Target", views.IDRedisPanel), http.StatusOK},
		"failed login":     {ta.post(anon, "/login", url.Values{"username": {"leo"}, "password": {"wrong-password"}}), http.StatusUnauthorized},
		"404":              {ta.get(anon, "/no-such-page"), http.StatusNotFound},
		"405":              {ta.do(anon, put), http.StatusMethodNotAllowed},
		"403":              {ta.post(anon, "/login", nil, "Sec-Fetch-Site", "cross-site"), http.StatusForbidden},
		"413":              {ta.do(anon, big), http.StatusRequestEntityTooLarge},
	}
	for range 5 {
		ta.post(anon, "/login", url.Values{"username": {"leo"}, "password": {"wrong-password"}})
	}
	cases["429"] = reply{ta.post(anon, "/login", url.Values{"username": {"leo"}, "password": {"wrong-password"}}), http.StatusTooManyRequests}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.r.status != tc.status {
				t.Errorf("status %d, want %d", tc.r.status, tc.status)
			}
			checkHTMLHeaders(t, name, tc.r)
		})
	}
}

// A page depends on the session cookie, and a fragment on HX-Request too:
// both reach caches in Vary. A page held until its session is saved goes
// out with its length, not chunked.
func TestSessionPagesVaryOnCookieAndHaveALength(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "vera", "vera-password")
	gz := []string{"Accept-Encoding", "gzip"}
	cases := map[string]struct {
		r    response
		vary []string
	}{
		// Asking for gzip by hand keeps the client from unzipping (and
		// dropping Content-Length): the length checked is the one sent.
		"home":             {ta.get(c, "/", gz...), []string{"Cookie", "Accept-Encoding"}},
		"profile":          {ta.get(c, "/profile", gz...), []string{"Cookie", "HX-Request", "Accept-Encoding"}},
		"profile fragment": {ta.get(c, "/profile", append(gz, "HX-Request", "true")...), []string{"Cookie", "HX-Request", "Accept-Encoding"}},
		"count fragment":   {ta.get(c, "/count", append(gz, "HX-Request", "true")...), []string{"Cookie", "HX-Request", "Accept-Encoding"}},
		"404":              {ta.get(c, "/no-such-page", gz...), []string{"Cookie", "Accept-Encoding"}},
	}
	for name, tc := range cases {
		vary := strings.Join(tc.r.header.Values("Vary"), ", ")
		for _, want := range tc.vary {
			if !strings.Contains(vary, want) {
				t.Errorf("%s: Vary %q lacks %s", name, vary, want)
			}
		}
		if tc.r.length != int64(len(tc.r.body)) {
			t.Errorf("%s: Content-Length %d for a body of %d bytes", name, tc.r.length, len(tc.r.body))
		}
	}
}

func TestRequestLimits(t *testing.T) {
	ta := newTestApp(t)
	for _, path := range []string{"/login", "/register"} {
		t.Run("a body over 64 KiB to "+path+" gets 413", func(t *testing.T) {
			body := "username=a&password=" + strings.Repeat("p", maxFormBytes)
			req, _ := http.NewRequest(http.MethodPost, ta.srv.URL+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r := ta.do(ta.client(), req)
			if r.status != http.StatusRequestEntityTooLarge || !strings.Contains(r.body, "larger than this site accepts") {
				t.Errorf("status %d, want 413 with a clear page", r.status)
			}
		})
	}
	// A client that announces a body over the limit is answered at once:
	// waiting for it ended in the read timeout's 408 (10 s on the real
	// server), the wrong status for a body that was too large.
	for _, path := range []string{"/login", "/register"} {
		t.Run("a body announced over 64 KiB to "+path+" gets 413 before it arrives", func(t *testing.T) {
			conn, err := net.Dial("tcp", ta.srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"+
				"Content-Length: %d\r\n\r\nusername=a", path, ta.srv.Listener.Addr(), 1<<30)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer while the body was still to come: %v", err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "larger than this site accepts") {
				t.Errorf("status %d, want 413 with a clear page", resp.StatusCode)
			}
		})
	}
	t.Run("a body just under the limit is read", func(t *testing.T) {
		body := "username=a&password=" + strings.Repeat("p", maxFormBytes-100)
		req, _ := http.NewRequest(http.MethodPost, ta.srv.URL+"/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := ta.do(ta.client(), req); r.status != http.StatusUnprocessableEntity {
			t.Errorf("status %d, want 422 (read, then refused as too long a password)", r.status)
		}
	})
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPut, "/login", "GET, HEAD, POST"},
		{http.MethodDelete, "/profile", "GET, HEAD"},
		{http.MethodGet, "/logout", "POST"},
		{"PROPFIND", "/register", "GET, HEAD, POST"},
	} {
		t.Run(tc.method+" "+tc.path+" gets 405 with Allow", func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, ta.srv.URL+tc.path, nil)
			r := ta.do(ta.client(), req)
			if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != tc.allow ||
				!strings.Contains(r.body, "does not accept "+tc.method) {
				t.Errorf("status %d, Allow %q; want 405, %q and a clear page", r.status, r.header.Get("Allow"), tc.allow)
			}
		})
	}
}

// A handler's own cookie goes out beside the session cookie, not instead.
func TestHandlerCookieDoesNotReplaceTheSessionCookie(t *testing.T) {
	ta := newTestApp(t)
	h := ta.app.loadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ta.app.Sessions.Put(r.Context(), "views", 1)
		http.SetCookie(w, &http.Cookie{Name: "theme", Value: "dark", Path: "/"})
		w.WriteHeader(http.StatusNoContent)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	var names []string
	for _, c := range rec.Result().Cookies() {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "session theme" && got != "theme session" {
		t.Errorf("cookies set: %q, want session and theme", got)
	}
}

// The profile says the session ends at its deadline "whatever you do": a
// password change renews the token but keeps that end; only a login starts
// the lifetime again.
func TestRenewalKeepsTheSessionsEnd(t *testing.T) {
	const lifetime = 2 * time.Hour
	ta := newTestAppWith(t, redistest.Start(t), func(c *Config) { c.Lifetime = lifetime })
	c := ta.client()
	ta.register(c, "hana", "hana-password")
	deadline := func() string {
		var env struct{ Deadline string }
		if err := json.Unmarshal([]byte(ta.redis.MustDo("GET", sessions.Key(ta.token(c)))), &env); err != nil {
			t.Fatal(err)
		}
		return env.Deadline
	}
	end := stamp(time.Now().Add(time.Hour)) // an hour left of the two
	ta.editSession(ta.token(c), func(_, env map[string]any) { env["deadline"] = end })

	before := ta.token(c)
	if r := ta.post(c, "/password", url.Values{"current": {"hana-password"}, "new": {"hana-password-2"}}); r.status != http.StatusSeeOther {
		t.Fatalf("change password: %d\n%s", r.status, r.body)
	}
	if ta.token(c) == before {
		t.Fatal("the password change did not renew the token")
	}
	if got := deadline(); got != end {
		t.Errorf("after a password change the session ends %s, want %s as before", got, end)
	}

	ta.login(c, "hana", "hana-password-2")
	if got, _ := time.Parse(time.RFC3339, deadline()); time.Until(got) < lifetime-time.Minute {
		t.Errorf("after a login the session ends %v, want a new lifetime (%v) from now", got, lifetime)
	}
}

// A cookie whose session Redis no longer holds (here Redis lost its data, as
// a restart without persistence does) is explained by the first whole page
// that meets it: the profile asks for a login and says why, and expires the
// cookie; a count starts over at 1, saying why, in a new session. The login
// page that already says the session ended does not repeat it, and the new
// session's pages say nothing (TestAnEndedSessionIsToldOnce: nor do the
// browser's later anonymous pages).
func TestAnEndedSessionIsExplained(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "ines", "ines-password")
	ta.get(c, "/count")
	old := ta.token(c)
	ta.redis.MustDo("FLUSHALL")

	r := ta.get(ta.clientWithToken(old), "/profile")
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `data-testid="ended-session"`) ||
		!strings.Contains(r.body, "Redis no longer holds") {
		t.Errorf("profile with the lost session: %d, ended-session shown %v; want 401 and the explanation",
			r.status, strings.Contains(r.body, `data-testid="ended-session"`))
	}
	if r := ta.get(ta.clientWithToken(old), "/login?from=expired"); strings.Contains(r.body, `data-testid="ended-session"`) {
		t.Error("the login page after an ended session repeats the explanation")
	}
	r = ta.get(c, "/count")
	if viewCount(t, r.body) != "1" || !strings.Contains(r.body, `data-testid="ended-session"`) || ta.token(c) == old || ta.token(c) == "" {
		t.Errorf("count with the lost session: views %s, explained %v, new token %v; want 1, explained, a new session",
			viewCount(t, r.body), strings.Contains(r.body, `data-testid="ended-session"`), ta.token(c) != old)
	}
	if r := ta.get(c, "/count"); strings.Contains(r.body, `data-testid="ended-session"`) || viewCount(t, r.body) != "2" {
		t.Error("the new session's next count still shows the explanation, or did not count on")
	}
	if strings.Contains(r.body, old) {
		t.Error("the page shows the old token")
	}
}

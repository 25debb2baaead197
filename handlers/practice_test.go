package handlers

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// The tutorial's practice exercise, end to end, with the status codes a
// student would see from curl.
func TestPracticeFlow(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()

	if r := ta.get(c, "/profile"); r.status != http.StatusUnauthorized || !strings.Contains(r.body, `data-testid="login-prompt"`) {
		t.Fatalf("profile without a session: status %d, want 401 with a login prompt", r.status)
	}
	if r := ta.get(c, "/register"); r.status != http.StatusOK {
		t.Fatalf("GET /register: %d", r.status)
	}
	ta.register(c, "Alice", "correct horse")
	// Registration logged us in; log out and back in through the form.
	if r := ta.post(c, "/logout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	if r := ta.get(c, "/login"); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="login-form"`) {
		t.Fatalf("GET /login: %d", r.status)
	}
	r := ta.post(c, "/login", url.Values{"username": {"alice"}, "password": {"correct horse"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/profile" {
		t.Fatalf("login: %d to %q, want 303 to /profile", r.status, r.header.Get("Location"))
	}
	r = ta.get(c, "/profile")
	if r.status != http.StatusOK || !strings.Contains(r.body, "Hello alice") || !strings.Contains(r.body, ">student<") {
		t.Fatalf("profile: %d, want 200 with Hello alice and the role\n%s", r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("profile Cache-Control = %q, want no-store", cc)
	}
	for want := 1; want <= 3; want++ {
		r := ta.get(c, "/count")
		if got := viewCount(t, r.body); r.status != http.StatusOK || got != strconv.Itoa(want) {
			t.Fatalf("count #%d: status %d, views %s", want, r.status, got)
		}
	}
	loggedIn := ta.token(c)
	r = ta.post(c, "/logout", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Clear-Site-Data") != `"cookies"` {
		t.Fatalf("logout: %d, Clear-Site-Data %q", r.status, r.header.Get("Clear-Site-Data"))
	}
	if r := ta.get(c, "/profile"); r.status != http.StatusUnauthorized {
		t.Errorf("profile after logout: %d, want 401", r.status)
	}
	// The cookie from before logout no longer logs anyone in.
	replay := ta.client()
	u, _ := url.Parse(ta.srv.URL)
	replay.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: loggedIn}})
	if r := ta.get(replay, "/profile"); r.status != http.StatusUnauthorized {
		t.Errorf("profile with the pre-logout cookie: %d, want 401", r.status)
	}
}

// What the tutorial's section 5 says happens in Redis, checked in Redis.
func TestSessionKeyInRedis(t *testing.T) {
	ta := newTestAppWith(t, redistest.Start(t), func(c *Config) { c.Idle = 0 }) // TTL then follows the absolute lifetime
	c := ta.client()
	ta.get(c, "/count") // an anonymous session, with one view
	anonymous := ta.token(c)
	if anonymous == "" {
		t.Fatal("the first count set no session cookie")
	}
	ta.register(c, "bob", "bob-password")
	token := ta.token(c)
	if token == anonymous {
		t.Fatal("the session token did not change across login")
	}
	if got := ta.redis.MustDo("EXISTS", sessions.Key(anonymous)); got != "0" {
		t.Errorf("pre-login key still exists after login")
	}
	ta.get(c, "/count")

	raw := ta.redis.MustDo("GET", sessions.Key(token))
	var stored struct {
		Deadline time.Time
		Values   struct {
			User  sessions.User
			Views int
		}
	}
	if err := json.Unmarshal([]byte(raw), &stored); err != nil {
		t.Fatalf("sess:<token> is not JSON: %v\n%s", err, raw)
	}
	if u := stored.Values.User; u.Username != "bob" || u.Role != "student" || stored.Values.Views != 2 {
		t.Errorf("stored session = %+v, want user bob/student and views 2 (carried over login)", stored.Values)
	}
	ttl, _ := strconv.Atoi(ta.redis.MustDo("TTL", sessions.Key(token)))
	if lifetime := int(ta.app.Sessions.Lifetime.Seconds()); ttl < lifetime-60 || ttl > lifetime {
		t.Errorf("TTL = %ds, want about the %ds lifetime", ttl, lifetime)
	}

	ta.post(c, "/logout", nil)
	if got := ta.redis.MustDo("EXISTS", sessions.Key(token)); got != "0" {
		t.Errorf("session key still exists after logout")
	}
}

// Practice step 3: two browsers, two sessions, two counts.
func TestSeparateCounts(t *testing.T) {
	ta := newTestApp(t)
	firefox, chrome := ta.client(), ta.client()
	for range 3 {
		ta.get(firefox, "/count")
	}
	if got := viewCount(t, ta.get(chrome, "/count").body); got != "1" {
		t.Errorf("second browser's first count = %s, want 1", got)
	}
	if got := viewCount(t, ta.get(firefox, "/count").body); got != "4" {
		t.Errorf("first browser's fourth count = %s, want 4", got)
	}
}

func TestBadFormInput(t *testing.T) {
	ta := newTestApp(t)
	ta.register(ta.client(), "taken", "a-good-password")
	long := strings.Repeat("x", 73)
	tests := []struct {
		name   string
		path   string
		form   url.Values
		status int
		says   string
	}{
		{"register without fields", "/register", url.Values{}, 422, "Enter a username."},
		{"register without password", "/register", url.Values{"username": {"carol"}}, 422, "Enter a password."},
		{"register with a short password", "/register", url.Values{"username": {"carol"}, "password": {"short"}}, 422, "at least 8"},
		{"register with a too-long password", "/register", url.Values{"username": {"carol"}, "password": {long}}, 422, "at most 72 bytes"},
		{"register with a malformed username", "/register", url.Values{"username": {"bad name!"}, "password": {"a-good-password"}}, 422, "Use only letters"},
		{"register with a too-short username", "/register", url.Values{"username": {"ab"}, "password": {"a-good-password"}}, 422, "3 to 32"},
		{"register a taken name", "/register", url.Values{"username": {"TAKEN"}, "password": {"a-good-password"}}, 409, "taken"},
		{"login without fields", "/login", url.Values{}, 422, "Enter your username."},
		{"login with a too-long password", "/login", url.Values{"username": {"taken"}, "password": {long}}, 422, "at most 72 bytes"},
		{"login with a wrong password", "/login", url.Values{"username": {"taken"}, "password": {"wrong-password"}}, 401, "Invalid username or password."},
		{"login as nobody", "/login", url.Values{"username": {"nobody"}, "password": {"a-good-password"}}, 401, "Invalid username or password."},
		{"login with a malformed username", "/login", url.Values{"username": {"<script>"}, "password": {"a-good-password"}}, 401, "Invalid username or password."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ta.post(ta.client(), tt.path, tt.form)
			if r.status != tt.status || !strings.Contains(r.body, tt.says) {
				t.Errorf("status %d, want %d with %q\n%s", r.status, tt.status, tt.says, r.body)
			}
		})
	}
	t.Run("a malformed body", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, ta.srv.URL+"/login", strings.NewReader("username=%zz"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := ta.do(ta.client(), req); r.status != http.StatusBadRequest || !strings.Contains(r.body, "could not be read") {
			t.Errorf("status %d, want 400 with a clear message", r.status)
		}
	})
}

// When htmx's history cache misses it asks again with HX-Request and puts
// the answer in place of <body>: it must get the whole page.
func TestHistoryRestoreGetsTheWholePage(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "hil", "hil-password")
	frag := ta.get(c, "/profile", "HX-Request", "true")
	full := ta.get(c, "/profile", "HX-Request", "true", "HX-History-Restore-Request", "true")
	if strings.Contains(frag.body, "<nav") {
		t.Fatalf("the fragment has the layout's nav; the test cannot tell them apart")
	}
	if !strings.Contains(full.body, "<nav") {
		t.Errorf("history restore got a fragment, want the whole page:\n%s", full.body)
	}
}

// The nav follows the session: an htmx login answer replaces it out of band,
// with the Sessions link; a full page has it in place.
func TestNavFollowsTheSession(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "nia", "nia-password")
	ta.post(c, "/logout", nil)
	r := ta.post(c, "/login", url.Values{"username": {"nia"}, "password": {"nia-password"}}, "HX-Request", "true")
	if !strings.Contains(r.body, `id="nav-links" hx-swap-oob="true"`) || !strings.Contains(r.body, `href="/sessions"`) {
		t.Errorf("the htmx login answer does not replace the nav with a Sessions link:\n%s", r.body)
	}
	if full := ta.get(c, "/profile"); !strings.Contains(full.body, `href="/sessions"`) {
		t.Errorf("the full page has no Sessions link when logged in")
	}
	if anon := ta.get(ta.client(), "/"); strings.Contains(anon.body, `data-testid="nav-sessions"`) {
		t.Errorf("an anonymous page has the Sessions link in its nav")
	}
}

// A click on the counter gets the counter alone. Only the click that
// creates the session tells the page's Redis panel to reload; later counts
// reach it over the live stream, once.
func TestCountClickGetsTheCounterAlone(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	click := []string{"HX-Request", "true", "HX-Target", views.IDViewCount}
	first := ta.get(c, "/count", click...)
	if !strings.Contains(first.body, `id="view-count"`) || strings.Contains(first.body, `id="nav-links"`) {
		t.Errorf("the click's answer is not the counter alone:\n%s", first.body)
	}
	if first.header.Get("HX-Trigger") != views.EventSessionChanged {
		t.Errorf("the click that created the session did not ask the panel to reload")
	}
	if next := ta.get(c, "/count", click...); next.header.Get("HX-Trigger") != "" || viewCount(t, next.body) != "2" {
		t.Errorf("second click: HX-Trigger %q, count %s; want none and 2", next.header.Get("HX-Trigger"), viewCount(t, next.body))
	}
}

// An empty sign-up form shows every field's error at once, not one per try.
func TestRegisterShowsEveryFieldError(t *testing.T) {
	ta := newTestApp(t)
	r := ta.post(ta.client(), "/register", url.Values{"username": {""}, "password": {""}})
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("empty sign-up: %d, want 422", r.status)
	}
	for _, id := range []string{`id="username-error"`, `id="password-error"`} {
		if !strings.Contains(r.body, id) {
			t.Errorf("the form lacks %s:\n%s", id, r.body)
		}
	}
}

// The login page's notices say what happened to this browser's session
// ("You are logged out. Your session's key is gone from Redis."); a browser
// that is logged in again (a tab reloaded after a login in another, Back to
// the page a logout left) is not told so, under a header naming its user.
func TestLoginNoticesOnlyForALoggedOutBrowser(t *testing.T) {
	ta := newTestApp(t)
	out := ta.client()
	for _, from := range []string{"logout", "expired", "account"} {
		if r := ta.get(out, "/login?from="+from); r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="notice"`) {
			t.Errorf("a logged-out browser at /login?from=%s: %d, notice shown %v; want 200 and the notice",
				from, r.status, strings.Contains(r.body, `data-testid="notice"`))
		}
	}
	in := ta.client()
	ta.register(in, "nora", "nora-password")
	for _, from := range []string{"logout", "expired", "account"} {
		r := ta.get(in, "/login?from="+from)
		if r.status != http.StatusOK {
			t.Fatalf("GET /login?from=%s logged in: %d", from, r.status)
		}
		if strings.Contains(r.body, `data-testid="notice"`) {
			i := strings.Index(r.body, `data-testid="notice"`)
			t.Errorf("a browser logged in as nora at /login?from=%s is told %s", from, r.body[i:min(len(r.body), i+160)])
		}
	}
}

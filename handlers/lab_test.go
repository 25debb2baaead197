package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/sessionstack"
	"github.com/sessionlab/sessionlab/views"
)

// labStep is a step's <li> on /lab, "" when absent.
func labStep(body, step string) string {
	for _, part := range strings.Split(body, `<li data-testid="lab-step"`)[1:] {
		if strings.HasPrefix(part, ` data-step="`+step+`"`) {
			return part
		}
	}
	return ""
}

// In memory mode the store and servers steps cannot tick and say what to
// run, and after a restart the restart step shows the count was lost.
func TestLabInMemoryModeShowsTheLoss(t *testing.T) {
	rs := redistest.Start(t)
	before := wireTestApp(t, rs, testConfig(rs, sessionstack.Memory)).serve()
	c := before.client()
	token := before.anonymousSession(c)
	if r := before.get(c, "/count"); r.status != http.StatusOK {
		t.Fatalf("GET /count: %d", r.status)
	}
	r := before.get(c, "/lab")
	if r.status != http.StatusOK {
		t.Fatalf("GET /lab: %d", r.status)
	}
	for step, want := range map[string]string{
		"store":   `data-done="false"`,
		"count":   `data-done="true"`,
		"servers": `data-done="false"`,
		"restart": `data-done="false"`,
	} {
		if s := labStep(r.body, step); !strings.Contains(s, want) {
			t.Errorf("memory mode, step %s: want %s in\n%s", step, want, s)
		}
	}
	for _, step := range []string{"store", "servers"} {
		if s := labStep(r.body, step); !strings.Contains(s, `data-testid="lab-blocked"`) || !strings.Contains(s, "-store memory") {
			t.Errorf("memory mode, step %s does not say what to run:\n%s", step, s)
		}
	}

	// A restart: a new process with its own memory, on the same address.
	after := wireTestApp(t, rs, testConfig(rs, sessionstack.Memory)).serve()
	u, _ := url.Parse(after.srv.URL)
	c2 := after.client()
	c2.Jar.SetCookies(u, []*http.Cookie{{Name: after.app.Sessions.Cookie.Name, Value: token}})
	r = after.get(c2, "/lab")
	s := labStep(r.body, "restart")
	if !strings.Contains(s, `data-testid="lab-lost"`) || !strings.Contains(s, "lost with the process") || !strings.Contains(s, `data-done="false"`) {
		t.Errorf("after a restart in memory mode the restart step does not show the loss:\n%s", s)
	}
	if got := svgText(r.body, "lab-path-key"); !strings.Contains(got, "sess:"+token[:6]+"…") || !strings.Contains(got, "lost") {
		t.Errorf("after a restart in memory mode the picture's memory box says %q, want the lost session's key and that it was lost", got)
	}
}

// The header's "N of 7 done" is on every page, counted from the session as
// loaded: a page other than /lab sends no extra Redis command for it.
func TestLabProgressInTheHeader(t *testing.T) {
	ta := newTestApp(t).serve()
	c := ta.client()
	ta.anonymousSession(c)
	ta.get(c, "/count")
	r := ta.get(c, "/count")
	if !strings.Contains(r.body, `data-testid="lab-progress">2 of 7 done<`) {
		i := strings.Index(r.body, `lab-progress`)
		t.Errorf("after three views the header does not say 2 of 7 done: %s", r.body[i:min(len(r.body), i+200)])
	}
	if n := len(traceLines(r.body)); n != 2 {
		i := strings.Index(r.body, `redis-trace-list`)
		t.Errorf("GET /count sent %d Redis commands, want its two (GET, the count script): %s", n, r.body[i:min(len(r.body), i+1500)])
	}
}

// setCookieOf is the session's Set-Cookie line of a response ("" for none).
func setCookieOf(r response, name string) string {
	for _, line := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(line, name+"=") {
			return line
		}
	}
	return ""
}

// What docs/security.md says -lab allows, and no more.
func TestLabSwitchesWeakenOnlyTheirOwnSession(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	name := ta.app.Sessions.Cookie.Name
	mine, other := ta.client(), ta.client()
	ta.anonymousSession(mine)
	otherToken := ta.anonymousSession(other)
	before := ta.token(mine)

	// Only on=0 weakens: anything else is refused and changes nothing.
	for _, v := range []string{"", "2", "off", "false"} {
		if r := ta.post(mine, "/lab/switch/httponly", url.Values{"on": {v}}); r.status != http.StatusBadRequest ||
			ta.token(mine) != before || setCookieOf(r, name) != "" {
			t.Errorf("on=%q: %d, token renewed %v; want 400 and nothing changed", v, r.status, ta.token(mine) != before)
		}
	}
	r := ta.post(mine, "/lab/switch/httponly", url.Values{"on": {"0"}})
	line := setCookieOf(r, name)
	if r.status != http.StatusSeeOther || line == "" || strings.Contains(line, "HttpOnly") {
		t.Fatalf("switching HttpOnly off: %d, Set-Cookie %q; want 303 and a cookie without HttpOnly", r.status, line)
	}
	if ta.token(mine) == before || ta.keyExists(before) {
		t.Error("the switch did not renew the token")
	}
	if r := ta.get(mine, "/count"); !strings.Contains(r.body, `data-testid="lab-weakened"`) {
		t.Error("a page of the weakened session has no weakened banner")
	}
	t.Run("another session keeps HttpOnly and shows no banner", func(t *testing.T) {
		r := ta.post(other, "/login", url.Values{"username": {"nobody"}, "password": {"wrong-password"}})
		if strings.Contains(r.body, `data-testid="lab-weakened"`) {
			t.Error("another session's page shows the weakened banner")
		}
		ta.register(other, "olga", "olga-password")
		r = ta.get(other, "/profile")
		if strings.Contains(r.body, `data-testid="lab-weakened"`) {
			t.Error("another session's profile shows the weakened banner")
		}
		if ta.keyExists(otherToken) {
			t.Error("another session's login did not renew its token")
		}
	})
	t.Run("a pasted ID must name a live session", func(t *testing.T) {
		c := ta.client()
		unknown := strings.Repeat("A", tokenLen)
		r := ta.post(c, "/lab/use", url.Values{"id": {unknown}})
		if r.status != http.StatusNotFound || setCookieOf(r, name) != "" || ta.keyExists(unknown) {
			t.Errorf("POST /lab/use with an unknown ID: %d, Set-Cookie %q; want 404, no cookie, no session", r.status, setCookieOf(r, name))
		}
		if r := ta.post(c, "/lab/use", url.Values{"id": {"not a token"}}); r.status != http.StatusUnprocessableEntity {
			t.Errorf("POST /lab/use with a malformed ID: %d, want 422", r.status)
		}
	})
	t.Run("a read that does not match the cookie is refused", func(t *testing.T) {
		if r := ta.post(mine, "/lab/read", url.Values{"read": {"someone-else"}}); r.status != http.StatusUnprocessableEntity {
			t.Errorf("POST /lab/read with a wrong value: %d, want 422", r.status)
		}
		if r := ta.post(mine, "/lab/read", url.Values{"read": {""}}); r.status != http.StatusUnprocessableEntity {
			t.Errorf("POST /lab/read reading nothing from a cookie without HttpOnly: %d, want 422", r.status)
		}
		if r := ta.post(mine, "/lab/read", url.Values{"read": {ta.token(mine)}}); r.status != http.StatusOK || !strings.Contains(r.body, "lab-read-exposed") {
			t.Errorf("POST /lab/read with this session's ID: %d, want 200 saying it was exposed", r.status)
		}
	})
	t.Run("a process without -lab ignores a stored switch", func(t *testing.T) {
		plain := newTestAppOn(t, ta.redis).serve()
		u, _ := url.Parse(plain.srv.URL)
		c := plain.client()
		c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: ta.token(mine)}})
		r := plain.post(c, "/register", url.Values{"username": {"pia"}, "password": {"pia-password"}})
		if line := setCookieOf(r, name); r.status != http.StatusSeeOther || !strings.Contains(line, "HttpOnly") {
			t.Errorf("login on a process without -lab: %d, Set-Cookie %q; want HttpOnly", r.status, line)
		}
		if r := plain.get(c, "/profile"); strings.Contains(r.body, `data-testid="lab-weakened"`) {
			t.Error("a process without -lab shows the weakened banner")
		}
	})
}

// With renewal switched off, a login keeps the token (the fixation
// experiment); switched back on, the token is renewed at once and at login.
func TestLabRenewalSwitch(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	c := ta.client()
	ta.anonymousSession(c)
	if r := ta.post(c, "/lab/switch/renewal", url.Values{"on": {"0"}}); r.status != http.StatusSeeOther {
		t.Fatalf("switching renewal off: %d", r.status)
	}
	planted := ta.token(c)
	ta.register(c, "fay", "fay-password")
	if ta.token(c) != planted {
		t.Fatal("with renewal off the login renewed the token")
	}
	if r := ta.post(c, "/lab/switch/renewal", url.Values{"on": {"1"}}); r.status != http.StatusSeeOther || ta.token(c) == planted {
		t.Fatalf("switching renewal on: %d, token renewed: %v", r.status, ta.token(c) != planted)
	}
	before := ta.token(c)
	ta.login(c, "fay", "fay-password")
	if ta.token(c) == before {
		t.Error("with renewal back on the login kept the token")
	}
}

// The servers step knows whether another instance shares this Redis (each
// announces itself in the instances hash, as main runs it): alone, it says
// it cannot be done here and what to run; beside another, it says so, and
// it ticks once the other instance counted this session, naming no ports
// but the instances it saw.
func TestLabServersStepKnowsTheInstancesOnItsRedis(t *testing.T) {
	a := newTestAppWith(t, redistest.Start(t), func(c *Config) { c.Instance = "a" })
	if _, err := a.app.Instances.Announce(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := a.client()
	a.anonymousSession(c)
	a.get(c, "/count")

	s := labStep(a.get(c, "/lab").body, "servers")
	if !strings.Contains(s, `data-done="false"`) || !strings.Contains(s, `data-testid="lab-blocked"`) ||
		!strings.Contains(s, "Only this instance (a)") || !strings.Contains(s, "go tool task demo") {
		t.Errorf("with one instance the servers step does not say it cannot be done here and what to run:\n%s", s)
	}

	b := newTestAppWith(t, a.redis, func(c *Config) { c.Instance = "b" }, func(app *App) { app.ProcessID = "d4e5f6" })
	if _, err := b.app.Instances.Announce(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := a.get(c, "/lab")
	s = labStep(r.body, "servers")
	if strings.Contains(s, `data-testid="lab-blocked"`) || !strings.Contains(s, "Instances a and b share this Redis now") || !strings.Contains(s, `data-done="false"`) {
		t.Errorf("beside instance b the servers step does not say both share this Redis, or ticked before b served this session:\n%s", s)
	}
	bProcess := strings.Split(strings.Split(a.redis.MustDo("HGET", "instances", "b"), `"process":"`)[1], `"`)[0]
	if want := "b · process " + bProcess + "</text>"; !strings.Contains(r.body, want) {
		t.Errorf("the path picture does not list instance b with its process (%q)", want)
	}

	// The same cookie on b: the count goes on there.
	u, _ := url.Parse(b.srv.URL)
	cb := b.client()
	cb.Jar.SetCookies(u, []*http.Cookie{{Name: b.app.Sessions.Cookie.Name, Value: a.token(c)}})
	if got := viewCount(t, b.get(cb, "/count").body); got != "3" {
		t.Fatalf("the third view, on instance b: %s", got)
	}
	r = a.get(c, "/lab")
	s = labStep(r.body, "servers")
	if !strings.Contains(s, `data-done="true"`) || !strings.Contains(s, "by instance b") || !strings.Contains(s, "made by instance a") {
		t.Errorf("after a count on b the servers step does not tick with both instances as evidence:\n%s", s)
	}
	if strings.Contains(s, ":8080") {
		t.Errorf("the done servers step names task demo's ports, which these instances do not use:\n%s", s)
	}
	if !strings.Contains(r.body, "b · process "+bProcess+" · served this session</text>") {
		t.Error("the path picture does not say instance b served this session")
	}
}

// With three instances on one Redis (task demo with DEMO_PORTS="8080 8081
// 8082"), the servers step names them as a list reads: "a, b and c".
func TestLabServersStepNamesThreeInstances(t *testing.T) {
	rs := redistest.Start(t)
	var apps []*testApp
	for i, name := range []string{"a", "b", "c"} {
		ta := newTestAppWith(t, rs, func(c *Config) { c.Instance = name }, func(app *App) { app.ProcessID = fmt.Sprintf("d4e5f%d", i) })
		if _, err := ta.app.Instances.Announce(t.Context()); err != nil {
			t.Fatal(err)
		}
		apps = append(apps, ta)
	}
	a := apps[0]
	c := a.client()
	a.anonymousSession(c)
	s := labStep(a.get(c, "/lab").body, "servers")
	if !strings.Contains(s, "Instances a, b and c share this Redis now") {
		t.Errorf("beside b and c the servers step does not name the three instances as a list:\n%s", s)
	}
}

// A session ID pasted into a second browser (POST /lab/use) makes that
// browser the same session: the sessions page shows one row, and that row
// names both browsers, this one marked, in each of them.
func TestLabSessionsPageShowsEveryBrowserHoldingTheID(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	one, two := ta.client(), ta.client()
	ta.register(one, "hana", "hana-password")
	ta.get(one, "/lab")
	if r := ta.get(one, "/sessions"); strings.Contains(r.body, `data-testid="lab-holders"`) {
		t.Error("a session held by one browser says it is in several")
	}
	ta.get(two, "/lab") // two's own lab-browser cookie, as a browser that opened the lab has
	if r := ta.post(two, "/lab/use", url.Values{"id": {ta.token(one)}}); r.status != http.StatusSeeOther {
		t.Fatalf("POST /lab/use: %d", r.status)
	}
	if r := ta.get(two, "/lab"); !strings.Contains(r.body, `data-testid="lab-holders"`) {
		t.Error("the lab page of the browser that took the ID does not say two browsers hold it")
	}
	for name, c := range map[string]*http.Client{"one": one, "two": two} {
		r := ta.get(c, "/sessions")
		if n := strings.Count(r.body, `data-testid="session-row"`); n != 1 {
			t.Errorf("browser %s: %d session rows, want 1 (one ID, one session)", name, n)
		}
		if n := strings.Count(r.body, `data-testid="lab-holder"`); n != 2 {
			t.Errorf("browser %s: the session row names %d browsers, want 2", name, n)
		}
		if n := strings.Count(r.body, `data-testid="lab-holder" data-this="true"`); n != 1 {
			t.Errorf("browser %s: %d browsers marked as this one, want 1", name, n)
		}
	}
}

// Every page a weakened session is shown carries the banner: pages, forms,
// a logged-in page, an error page; no page of another session does.
func TestLabWeakenedBannerOnEveryPage(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	weak, other := ta.client(), ta.client()
	ta.anonymousSession(weak)
	ta.anonymousSession(other)
	if r := ta.post(weak, "/lab/switch/renewal", url.Values{"on": {"0"}}); r.status != http.StatusSeeOther {
		t.Fatalf("switching renewal off: %d", r.status)
	}
	pages := []string{"/", "/count", "/lab", "/redis", "/login", "/register", "/profile", "/sessions", "/no-such-page"}
	check := func(when string) {
		t.Helper()
		for _, path := range pages {
			if r := ta.get(weak, path); !strings.Contains(r.body, `data-testid="lab-weakened"`) {
				t.Errorf("%s: GET %s (%d) of the weakened session has no banner", when, path, r.status)
			}
			if r := ta.get(other, path); strings.Contains(r.body, `data-testid="lab-weakened"`) {
				t.Errorf("%s: GET %s (%d) of another session has the banner", when, path, r.status)
			}
		}
	}
	check("anonymous")
	ta.register(weak, "wes", "wes-password")
	ta.register(other, "oona", "oona-password")
	check("logged in")
}

// Progress belongs to the session and follows it through a login's token
// renewal, like the count: the ticks and their evidence stay.
func TestLabProgressFollowsTheSessionThroughLogin(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	c := ta.client()
	ta.anonymousSession(c)
	ta.get(c, "/count")
	// httponly, both outcomes: the script reads the ID without HttpOnly,
	// and nothing once HttpOnly is back.
	ta.post(c, "/lab/switch/httponly", url.Values{"on": {"0"}})
	if r := ta.post(c, "/lab/read", url.Values{"read": {ta.token(c)}}); r.status != http.StatusOK {
		t.Fatalf("reading the ID without HttpOnly: %d", r.status)
	}
	ta.post(c, "/lab/switch/httponly", url.Values{"on": {"1"}})
	if r := ta.post(c, "/lab/read", url.Values{"read": {""}}); r.status != http.StatusOK {
		t.Fatalf("reading nothing with HttpOnly: %d", r.status)
	}
	before := ta.get(c, "/lab").body
	for _, step := range []string{"store", "count", "httponly"} {
		if !strings.Contains(labStep(before, step), `data-done="true"`) {
			t.Fatalf("before the login, step %s is not done:\n%s", step, labStep(before, step))
		}
	}
	anonymous := ta.token(c)
	ta.register(c, "lena", "lena-password")
	if ta.token(c) == anonymous {
		t.Fatal("the login did not renew the token")
	}
	after := ta.get(c, "/lab").body
	for _, step := range []string{"store", "count", "httponly"} {
		if !strings.Contains(labStep(after, step), `data-done="true"`) {
			t.Errorf("after the login, step %s is not done:\n%s", step, labStep(after, step))
		}
	}
	if a, b := labStep(before, "httponly"), labStep(after, "httponly"); a != b {
		t.Errorf("the httponly evidence changed with the login:\nbefore %s\nafter  %s", a, b)
	}
	if !strings.Contains(after, `data-testid="lab-progress">3 of 7 done<`) {
		t.Error("after the login the header does not say 3 of 7 done")
	}
}

// A lab switch sent twice with one cookie (a double click without
// JavaScript): the copy that arrives after the first renewed the token finds
// no session under its cookie. It says the session got a new token a moment
// ago, as the other forms that renew do, and sets no cookie: "This browser
// has no session yet" would be untrue, since the first copy's cookie is live.
func TestLabSwitchSentTwiceSaysRenewed(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true })
	noJar := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c := ta.client()
	ta.register(c, "lab-twice", "kim-password")
	cookie := ta.app.Sessions.Cookie.Name + "=" + ta.token(c)
	first := fetch(noJar, ta.srv.URL+"/lab/switch/httponly", url.Values{"on": {"0"}}, "Cookie", cookie)
	if first.status != http.StatusSeeOther || !first.setCookie {
		t.Fatalf("the first copy answered %d (set a cookie: %v), want 303 and the new cookie", first.status, first.setCookie)
	}
	second := fetch(noJar, ta.srv.URL+"/lab/switch/httponly", url.Values{"on": {"0"}}, "Cookie", cookie)
	if second.status != http.StatusConflict || !strings.Contains(second.body, "Session renewed") || second.setCookie {
		t.Errorf("the second copy answered %d (set a cookie: %v), want 409 “Session renewed” and no cookie:\n%s", second.status, second.setCookie, second.body)
	}
}

// The instances hash edited by hand into another type (SET instances x)
// fails no page: /lab reads it as no instance until the next announce, which
// starts the hash again (the lab answered 500 for everyone, and every
// announce failed too, so the key stayed).
func TestLabSurvivesAnInstancesKeyOfAnotherType(t *testing.T) {
	a := newTestAppWith(t, redistest.Start(t), func(c *Config) { c.Instance = "a" })
	c := a.client()
	a.anonymousSession(c)
	a.redis.MustDo("SET", "instances", "hello")
	if r := a.get(c, "/lab"); r.status != http.StatusOK {
		t.Fatalf("GET /lab with instances of another type: %d, want 200", r.status)
	}
	if live, err := a.app.Instances.Announce(t.Context()); err != nil || len(live) != 1 || live[0].Name != "a" {
		t.Fatalf("the announce after the edit: %v, %v; want instance a alone", live, err)
	}
	if got := a.redis.MustDo("TYPE", "instances"); got != "hash" {
		t.Errorf("instances is a %s after the announce, want a hash again", got)
	}
	if s := labStep(a.get(c, "/lab").body, "servers"); !strings.Contains(s, "Only this instance (a)") {
		t.Errorf("the servers step after the announce:\n%s", s)
	}
}

// A login (-lab) records the lab browser only as the id /lab issues (16 hex
// digits): a lab-browser cookie the client wrote itself went into the
// session whole, so a login with one of 60 KB stored 60 KB in its key
// (hostile-clients run: a 60,305-byte sess: value, against 569 bytes).
func TestLabLoginRecordsOnlyALabBrowserID(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true })
	c := ta.client()
	ta.register(c, "lena", "lena-password")
	u, _ := url.Parse(ta.srv.URL)
	big := strings.Repeat("Z", 60<<10)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: labBrowserCookie, Value: big, Path: "/"}})
	if r := ta.post(c, "/login", url.Values{"username": {"lena"}, "password": {"lena-password"}}); r.status != http.StatusSeeOther {
		t.Fatalf("login: %d, want 303", r.status)
	}
	stored := ta.redis.MustDo("GET", sessions.Key(ta.token(c)))
	if strings.Contains(stored, "ZZZZ") || len(stored) > 4<<10 {
		t.Errorf("the session holds %d bytes after a login with a %d-byte lab-browser cookie, some of it the cookie's", len(stored), len(big))
	}
	if r := ta.get(c, "/lab"); r.status != http.StatusOK {
		t.Errorf("GET /lab after it: %d", r.status)
	}
	ta.noErrorLogged(t)
}

// A browser whose session ended (renewed by a login elsewhere, revoked,
// expired) still sends its cookie: the page's banner says so, and the
// lab's picture of this request says the same, not "no session cookie".
func TestLabPathNamesTheCookieOfAnEndedSession(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	c := ta.client()
	token := ta.anonymousSession(c)
	ta.redis.MustDo("DEL", "sess:"+token)

	r := ta.get(ta.withCookie(token), "/lab")
	if r.status != http.StatusOK {
		t.Fatalf("GET /lab: %d", r.status)
	}
	if !strings.Contains(r.body, `data-testid="ended-session"`) {
		t.Fatal("the page does not say this browser sent the cookie of an ended session")
	}
	cut := "session=" + token[:6] + "…"
	if got := svgText(r.body, "lab-path-cookie"); !strings.Contains(got, cut) || !strings.Contains(got, "ended") {
		t.Errorf("the picture's cookie says %q, want the cookie this browser sent (%s) and that its session ended", got, cut)
	}
	if got := svgText(r.body, "lab-path-key"); !strings.Contains(got, "sess:"+token[:6]+"…") || !strings.Contains(got, "not in Redis") {
		t.Errorf("the picture's Redis box says %q, want the ended session's key and that it is not in Redis", got)
	}

	// The ended session's row on its computer's list is this browser's, not
	// another's (the only other browser here is none).
	if n := strings.Count(r.body, `data-testid="lab-path-other"`); n != 0 {
		t.Errorf("the picture lists %d other browsers of this computer, want none: the row of this browser's ended session is no other browser", n)
	}

	// A key still there, holding what is no session (edited by hand).
	token = ta.anonymousSession(ta.client())
	ta.redis.MustDo("SET", "sess:"+token, "not json", "KEEPTTL")
	r = ta.get(ta.withCookie(token), "/lab")
	if got := svgText(r.body, "lab-path-key"); !strings.Contains(got, "sess:"+token[:6]+"…") || !strings.Contains(got, "holds no session") || strings.Contains(got, "not in Redis") {
		t.Errorf("the picture's Redis box says %q, want the key and that it holds no session (it is in Redis)", got)
	}
}

// svgText is the text of the picture's <text> element with this data-testid,
// "" when absent.
func svgText(body, id string) string {
	i := strings.Index(body, `data-testid="`+id+`"`)
	if i < 0 {
		return ""
	}
	rest := body[i:]
	start, end := strings.IndexByte(rest, '>'), strings.Index(rest, "</text>")
	if start < 0 || end < start {
		return ""
	}
	return rest[start+1 : end]
}

// A browser with no session yet has neither switch: each experiment that
// says "below" says instead to count a view first, the fixation one too.
func TestLabExperimentsWithoutASessionSayToCountFirst(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	r := ta.get(ta.client(), "/lab")
	if r.status != http.StatusOK {
		t.Fatalf("GET /lab: %d", r.status)
	}
	for _, section := range []string{"lab-httponly", "lab-fixation"} {
		i := strings.Index(r.body, `data-testid="`+section+`"`)
		if i < 0 {
			t.Fatalf("no %s section", section)
		}
		s := r.body[i:]
		s = s[:strings.Index(s, "</section>")]
		if !strings.Contains(s, "Count a view first") {
			t.Errorf("the %s section, which has no switch without a session, does not say to count a view first:\n%s", section, s)
		}
	}
}

// The httpOnly experiment's second browser holds a copy of the session's ID.
// When the first browser renews it (the switch back to HttpOnly), the copy's
// pages are refused as "Session renewed" for a while: the answer must not
// tell that browser it logged in or sent a form twice, which it did not,
// but that it held a copy of an ID another browser renewed.
func TestLabCopyOfARenewedIDIsToldWhatHappened(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	victim := ta.client()
	token := ta.anonymousSession(victim)
	if r := ta.post(victim, "/lab/switch/httponly", url.Values{"on": {"0"}}); r.status != http.StatusSeeOther {
		t.Fatalf("switching HttpOnly off: %d", r.status)
	}
	copied := ta.token(victim)
	if copied == token {
		t.Fatal("switching HttpOnly off kept the ID")
	}
	copyHolder := ta.withCookie(copied)
	if r := ta.post(victim, "/lab/switch/httponly", url.Values{"on": {"1"}}); r.status != http.StatusSeeOther || ta.token(victim) == copied {
		t.Fatalf("switching HttpOnly back on: %d, ID renewed: %v", r.status, ta.token(victim) != copied)
	}

	r := ta.get(copyHolder, "/count")
	if r.status != http.StatusConflict {
		t.Skipf("the copy's count answered %d: no longer refused as renewed", r.status)
	}
	if !strings.Contains(r.body, "another browser") || !strings.Contains(r.body, "copy") {
		t.Errorf("the copy's refused count does not say another browser renewed the ID it held a copy of:\n%s", r.body)
	}
}

// Every refusal of a lab step links back to the lab, where the experiment
// is, and not only Home.
func TestLabRefusalsLinkBackToTheLab(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	fresh := ta.client()
	counted := ta.client()
	ta.get(counted, "/count")
	for _, tc := range []struct {
		what   string
		c      *http.Client
		path   string
		form   url.Values
		status int
	}{
		{"a switch position that is none", counted, "/lab/switch/httponly", url.Values{"on": {"2"}}, http.StatusBadRequest},
		{"a switch without a session", fresh, "/lab/switch/httponly", url.Values{"on": {"0"}}, http.StatusConflict},
		{"a pasted ID that is no session ID", counted, "/lab/use", url.Values{"id": {"not-an-id"}}, http.StatusUnprocessableEntity},
	} {
		r := ta.post(tc.c, tc.path, tc.form, ta.sameSite()...)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d\n%s", tc.what, r.status, tc.status, r.body)
			continue
		}
		if !strings.Contains(r.body, `<a href="/lab" data-testid="problem-back">`) {
			t.Errorf("%s: the refusal does not link back to the lab:\n%s", tc.what, r.body)
		}
	}
}

// A count whose list shows this browser and another says the "Two
// browsers" step is done in its header, as /lab then does, before /lab
// has been viewed to record it.
func TestLabProgressCountsTwoBrowsersAsLabWould(t *testing.T) {
	ta := newTestApp(t, trustLoopback)
	e, f := behind(t, firefoxLinux, "203.0.113.9"), behind(t, chromeWin, "203.0.113.9")
	ta.get(e, "/count")
	ta.get(f, "/count")
	progress := func(body string) string {
		i := strings.Index(body, `data-testid="lab-progress">`)
		if i < 0 {
			t.Fatal("no lab progress in the header")
		}
		rest := body[i+len(`data-testid="lab-progress">`):]
		return rest[:strings.IndexByte(rest, '<')]
	}
	page := progress(ta.get(e, "/count").body)
	click := progress(ta.get(e, "/count", "HX-Request", "true", "HX-Target", views.IDViewCount).body)
	// The panel the count page loads next swaps the header's progress too.
	panel := progress(ta.get(e, "/redis", "HX-Request", "true", "HX-Target", views.IDRedisPanel).body)
	lab := progress(ta.get(e, "/lab").body)
	if page != lab || click != lab || panel != lab || lab != "3 of 7 done" {
		t.Errorf("the count page says %q, its click %q, its panel %q, and /lab %q; want all 3 of 7 done", page, click, panel, lab)
	}
}

// The lab's id for a browser outlives any session cookie, so a browser
// restart that kept a "remember me" session is not a second browser holding
// its ID; and the page that gives a browser its id already counts it as
// this browser.
func TestLabKnowsThisBrowserAcrossRestartsAndOnItsFirstVisit(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	one, two := ta.client(), ta.client()
	ta.register(one, "ines", "ines-password")
	r := ta.get(one, "/lab")
	var lasts int
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == labBrowserCookie {
			lasts = c.MaxAge
		}
	}
	if lifetime := ta.app.Sessions.Lifetime; time.Duration(lasts)*time.Second <= lifetime {
		t.Errorf("the lab-browser cookie lasts %d s, not longer than a session (%v): it would go with a browser restart", lasts, lifetime)
	}
	if r := ta.post(two, "/lab/use", url.Values{"id": {ta.token(one)}}); r.status != http.StatusSeeOther {
		t.Fatalf("POST /lab/use: %d", r.status)
	}
	body := ta.get(two, "/lab").body // two's first id, issued by this very page
	if n, this := strings.Count(body, `data-testid="lab-holder"`), strings.Count(body, `data-testid="lab-holder" data-this="true"`); n != 2 || this != 1 {
		t.Errorf("the page names %d browsers holding the ID, %d of them this one; want 2 and 1", n, this)
	}
}

// labOps is the real Ops whose lab note of one name says the session ended,
// as when a logout or a lab switch takes it while a request is under way.
type labOps struct {
	sessions.Operations
	endedAt string
}

func (o labOps) LabNote(ctx context.Context, token, name string, v any, publish bool) error {
	if name == o.endedAt {
		return sessions.ErrNoSession
	}
	return o.Operations.LabNote(ctx, token, name, v, publish)
}

// The lab's actions on a session that ended under them, or that is not one,
// answer with a page that says so, never a 500: the httponly experiment's
// read when a logout or switch took the session meanwhile; taking an ID whose
// key a student made another type, or whose session is past its end.
func TestLabActionsOnASessionThatIsNoneSayWhy(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true; a.Ops = labOps{a.Ops, "httponly"} }).serve()
	c := ta.client()
	ta.get(c, "/count")
	if r := ta.post(c, "/lab/read", url.Values{"read": {""}}); r.status != http.StatusUnauthorized {
		t.Errorf("the read, its session ended meanwhile: %d, want 401 saying it ended", r.status)
	}
	hash := strings.Repeat("H", 43)
	ta.redis.MustDo("HSET", "sess:"+hash, "a", "b")
	if r := ta.post(ta.client(), "/lab/use", url.Values{"id": {hash}}); r.status != http.StatusNotFound {
		t.Errorf("taking an ID whose key is a hash: %d, want 404 no such session", r.status)
	}
	past := strings.Repeat("P", 43)
	ta.redis.MustDo("SET", "sess:"+past, `{"deadline":"2020-01-01T00:00:00.000Z","values":{"views":1}}`, "EX", "600")
	if r := ta.post(ta.client(), "/lab/use", url.Values{"id": {past}}); r.status != http.StatusNotFound {
		t.Errorf("taking the ID of a session past its end: %d, want 404 no such session", r.status)
	}
}

// Fixation is a browser that held the planted ID before the login that kept
// it: one that takes the ID after the login has hijacked a session, which the
// step must not tick as fixation.
func TestLabFixationNeedsTheIDPlantedBeforeTheLogin(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	ta.register(ta.client(), "carol", "carol-password")
	victim := ta.client()
	ta.get(victim, "/count")
	if r := ta.post(victim, "/lab/switch/renewal", url.Values{"on": {"0"}}); r.status != http.StatusSeeOther {
		t.Fatalf("renewal off: %d", r.status)
	}
	ta.get(victim, "/lab")
	planted := ta.token(victim)
	// A second browser holds the ID for a while, then lets it go.
	holder := ta.client()
	ta.get(holder, "/count")
	own := ta.token(holder)
	ta.post(holder, "/lab/use", url.Values{"id": {planted}})
	ta.get(holder, "/lab")
	ta.post(holder, "/lab/use", url.Values{"id": {own}})
	if r := ta.post(victim, "/login", url.Values{"username": {"carol"}, "password": {"carol-password"}}); r.status != http.StatusSeeOther || ta.token(victim) != planted {
		t.Fatalf("login with renewal off: %d, token kept %v", r.status, ta.token(victim) == planted)
	}
	// A third browser takes the ID only now.
	late := ta.client()
	ta.get(late, "/lab")
	ta.post(late, "/lab/use", url.Values{"id": {planted}})
	ta.get(late, "/lab")
	if stored := ta.redis.MustDo("GET", sessions.Key(planted)); strings.Contains(stored, `"exposed"`) {
		t.Errorf("the fixation step is ticked for a browser that took the ID after the login: %s", stored)
	}
}

// A password change or "log out everywhere else" renews the token, so the
// copies other browsers held are dead: the lab and the sessions page no
// longer say the ID is held in two browsers.
func TestLabForgetsTheHoldersOfAnIDACredentialChangeRenewed(t *testing.T) {
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/password", url.Values{"current": {"dora-password"}, "new": {"brand-new-password"}}},
		{"/sessions/revoke-others", url.Values{}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
			mine, copyOf := ta.client(), ta.client()
			ta.register(mine, "dora", "dora-password")
			ta.get(mine, "/lab")
			ta.post(copyOf, "/lab/use", url.Values{"id": {ta.token(mine)}})
			if body := ta.get(copyOf, "/lab").body; !strings.Contains(body, `data-testid="lab-holders"`) {
				t.Fatal("before: the lab does not say two browsers hold the ID")
			}
			if r := ta.post(mine, tc.path, tc.form); r.status != http.StatusSeeOther {
				t.Fatalf("%s: %d", tc.path, r.status)
			}
			for _, page := range []string{"/lab", "/sessions"} {
				if body := ta.get(mine, page).body; strings.Contains(body, `data-testid="lab-holders"`) {
					t.Errorf("%s after %s still says two browsers hold the ID; the other copy is dead", page, tc.path)
				}
			}
		})
	}
}

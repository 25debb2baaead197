package handlers

import (
	"context"
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

// This device's row says this request saw it, on this instance: requests
// refresh "last seen" only every few minutes, so the page records its own
// request first (else a session last counted on b would read "served by b"
// on a page a serves), and the index in Redis says the same.
func TestSessionsPageSeesThisDeviceNow(t *testing.T) {
	rs := redistest.Start(t)
	a, b := newLiveApp(t, rs, "a"), newLiveApp(t, rs, "b")
	laptop := browser(t, firefoxLinux)
	a.register(laptop, "carol", "carol-password")
	u, _ := url.Parse(b.srv.URL)
	au, _ := url.Parse(a.srv.URL)
	laptop.Jar.SetCookies(u, laptop.Jar.Cookies(au))
	if r := b.get(laptop, "/count"); r.status != http.StatusOK {
		t.Fatalf("count on b: %d", r.status)
	}
	id := sessions.ID(a.token(laptop))
	if e := rs.MustDo("HGET", sessions.IndexKey("carol"), id); !strings.Contains(e, `"instance":"b"`) {
		t.Fatalf("the count on b did not record b in the index: %s", e)
	}

	r := a.get(laptop, "/sessions")
	rows := sessionRows(t, r.body)
	if len(rows) != 1 || !rows[0].current || rows[0].instance != "a" {
		t.Errorf("this device's row on a page a served: %+v, want instance a", rows)
	}
	if !strings.Contains(r.body, `data-testid="session-last-seen"><time datetime="`) || !strings.Contains(r.body, ">just now</span></time>") {
		t.Errorf("this device's row does not say it was seen just now:\n%s", r.body)
	}
	if e := rs.MustDo("HGET", sessions.IndexKey("carol"), id); !strings.Contains(e, `"instance":"a"`) {
		t.Errorf("the index in Redis still says %s, want instance a as the page says", e)
	}
}

// The list is most recently seen first, and this device's row, recorded as
// seen now by the page itself (seenNow), is then the first: it must not sit
// below a row seen before it.
func TestSessionsPageListsThisDeviceSeenNowFirst(t *testing.T) {
	ta := newTestApp(t)
	laptop, phone := browser(t, firefoxLinux), browser(t, safariIPhone)
	ta.register(laptop, "olga", "olga-password")
	time.Sleep(10 * time.Millisecond)
	ta.login(phone, "olga", "olga-password") // seen after the laptop
	time.Sleep(1100 * time.Millisecond)      // the laptop's entry is over a second old: the page records it now

	rows := sessionRows(t, ta.get(laptop, "/sessions").body)
	if len(rows) != 2 || !rows[0].current {
		t.Errorf("rows %+v: want this device, seen just now, first", rows)
	}
}

// The sessions page lists every session of the user, on every instance,
// with device, IP and the instance that last served it, and marks this one.
func TestSessionsPageListsEverySessionOfTheUser(t *testing.T) {
	rs := redistest.Start(t)
	a, b := newLiveApp(t, rs, "a"), newLiveApp(t, rs, "b")
	laptop, phone, other := browser(t, firefoxLinux), browser(t, safariIPhone), browser(t, chromeWin)
	a.register(laptop, "alice", "alice-password")
	b.login(phone, "alice", "alice-password")
	a.register(other, "bob", "bob-password") // another user's session is not listed

	r := a.get(laptop, "/sessions")
	if r.status != http.StatusOK {
		t.Fatalf("GET /sessions: %d", r.status)
	}
	rows := sessionRows(t, r.body)
	if len(rows) != 2 {
		t.Fatalf("alice's sessions page shows %d rows, want 2: %+v", len(rows), rows)
	}
	byDevice := map[string]row{}
	for _, x := range rows {
		byDevice[x.device] = x
	}
	tests := []struct {
		device, instance string
		current          bool
	}{
		{"Firefox on Linux", "a", true},
		{"Safari on iOS", "b", false},
	}
	for _, tt := range tests {
		t.Run(tt.device, func(t *testing.T) {
			x, ok := byDevice[tt.device]
			if !ok {
				t.Fatalf("no row for %s in %+v", tt.device, rows)
			}
			if x.instance != tt.instance || x.current != tt.current || x.ip != "127.0.0.1" {
				t.Errorf("row = %+v, want instance %s, current %v, ip 127.0.0.1", x, tt.instance, tt.current)
			}
		})
	}
	for _, tok := range []string{a.token(laptop), a.token(phone)} {
		if strings.Contains(r.body, tok) {
			t.Errorf("the sessions page contains a session token")
		}
	}
	// The Redis panel shows the index as stored, with tokens cut.
	panel := a.get(laptop, "/redis")
	if !strings.Contains(panel.body, ">user:alice:sessions<") {
		t.Errorf("the Redis page does not show user:alice:sessions")
	}
	for _, tok := range []string{a.token(laptop), a.token(phone)} {
		if strings.Contains(panel.body, tok) {
			t.Errorf("the Redis page contains a full session token")
		}
	}
	if n := len(revokeBtns.FindAllString(r.body, -1)); n != 1 {
		t.Errorf("%d revoke buttons, want 1 (not on this device's row)", n)
	}

	// A view counted on b records b as the instance that last served the
	// laptop's session, inside the counting script (the sessions page a
	// serves then records a: TestSessionsPageSeesThisDeviceNow).
	b.get(laptop, "/count")
	if e := rs.MustDo("HGET", sessions.IndexKey("alice"), sessions.ID(a.token(laptop))); !strings.Contains(e, `"instance":"b"`) {
		t.Errorf("after a count on b, the laptop's index entry is %s, want instance b", e)
	}

	if r := a.get(apptestClient(t), "/sessions"); r.status != http.StatusUnauthorized {
		t.Errorf("GET /sessions without login: %d, want 401", r.status)
	}
}

// Revoking a session deletes its key at once; its next request, on any
// instance, is logged out. Nobody can revoke another user's session.
func TestRevokeLogsOutThatSessionEverywhere(t *testing.T) {
	rs := redistest.Start(t)
	a, b := newLiveApp(t, rs, "a"), newLiveApp(t, rs, "b")
	rdb := newRedisClient(t, rs)
	laptop, phone, mallory := browser(t, firefoxLinux), browser(t, safariIPhone), browser(t, chromeWin)
	a.register(laptop, "alice", "alice-password")
	b.login(phone, "alice", "alice-password")
	a.register(mallory, "mallory", "mallory-password")
	phoneID := sessions.ID(b.token(phone))

	// Mallory posts alice's session id: nothing happens.
	a.post(mallory, "/sessions/"+phoneID+"/revoke", nil)
	if r := b.get(phone, "/profile"); r.status != http.StatusOK {
		t.Fatalf("another user's revoke logged alice's phone out: %d", r.status)
	}
	// Revoking the session you are using is refused (log out instead).
	if r := a.post(laptop, "/sessions/"+sessions.ID(a.token(laptop))+"/revoke", nil); r.status != http.StatusBadRequest {
		t.Errorf("revoke own session: %d, want 400", r.status)
	}

	r := a.post(laptop, "/sessions/"+phoneID+"/revoke", nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/sessions" {
		t.Fatalf("revoke: %d to %q, want 303 to /sessions", r.status, r.header.Get("Location"))
	}
	if exists(t, rdb, sessions.Key(b.token(phone))) {
		t.Errorf("the revoked session's key is still in Redis")
	}
	if r := b.get(phone, "/profile"); r.status != http.StatusUnauthorized {
		t.Errorf("revoked session's next request on b: %d, want 401", r.status)
	}
	rows := sessionRows(t, a.get(laptop, "/sessions").body)
	if len(rows) != 1 || !rows[0].current {
		t.Errorf("after revoke the list is %+v, want this device only", rows)
	}
	// htmx gets the list back in place.
	b.login(phone, "alice", "alice-password")
	r = a.post(laptop, "/sessions/"+sessions.ID(b.token(phone))+"/revoke", nil, "HX-Request", "true", "HX-Target", views.IDSessionList)
	if r.status != http.StatusOK || !strings.HasPrefix(strings.TrimSpace(r.body), `<div id="session-list"`) {
		t.Errorf("htmx revoke: %d, want 200 with the list fragment\n%s", r.status, r.body)
	}
}

// "Log out everywhere else" ends every other session of the user and keeps
// this one.
func TestLogOutEverywhereElse(t *testing.T) {
	rs := redistest.Start(t)
	a, b := newLiveApp(t, rs, "a"), newLiveApp(t, rs, "b")
	laptop, phone, tablet, bob := browser(t, firefoxLinux), browser(t, safariIPhone), browser(t, chromeWin), browser(t, chromeWin)
	a.register(laptop, "alice", "alice-password")
	b.login(phone, "alice", "alice-password")
	a.login(tablet, "alice", "alice-password")
	b.register(bob, "bob", "bob-password")

	r := a.post(laptop, "/sessions/revoke-others", nil)
	if r.status != http.StatusSeeOther {
		t.Fatalf("revoke-others: %d", r.status)
	}
	tests := []struct {
		name   string
		app    *testApp
		c      *http.Client
		status int
	}{
		{"this session stays", a, laptop, http.StatusOK},
		{"phone on b is out", b, phone, http.StatusUnauthorized},
		{"tablet on a is out", a, tablet, http.StatusUnauthorized},
		{"another user is untouched", b, bob, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := tt.app.get(tt.c, "/profile"); r.status != tt.status {
				t.Errorf("profile: %d, want %d", r.status, tt.status)
			}
		})
	}
	if rows := sessionRows(t, a.get(laptop, "/sessions").body); len(rows) != 1 {
		t.Errorf("%d rows after log out everywhere else, want 1", len(rows))
	}
}

// POST /password checks the current password, sets the new one, gives this
// session a new token and logs out every other session.
func TestPasswordChangeLogsOutOtherSessions(t *testing.T) {
	rs := redistest.Start(t)
	a, b := newLiveApp(t, rs, "a"), newLiveApp(t, rs, "b")
	laptop, phone := browser(t, firefoxLinux), browser(t, safariIPhone)
	a.register(laptop, "alice", "old-password")
	b.login(phone, "alice", "old-password")

	refused := []struct {
		name          string
		current, next string
		testid        string
	}{
		{"wrong current password", "not-it-at-all", "new-password", "current-password-error"},
		{"no current password", "", "new-password", "current-password-error"},
		{"new password too short", "old-password", "short", "new-password-error"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			r := a.post(laptop, "/password", url.Values{"current": {tt.current}, "new": {tt.next}})
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, `data-testid="`+tt.testid+`"`) {
				t.Errorf("status %d, want 422 with %s", r.status, tt.testid)
			}
			if r := b.get(phone, "/profile"); r.status != http.StatusOK {
				t.Errorf("a refused change logged the phone out: %d", r.status)
			}
		})
	}

	before := a.token(laptop)
	r := a.post(laptop, "/password", url.Values{"current": {"old-password"}, "new": {"new-password"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/sessions?from=password" {
		t.Fatalf("change password: %d to %q", r.status, r.header.Get("Location"))
	}
	if a.token(laptop) == before {
		t.Errorf("the session kept its token across a password change")
	}
	if r := a.get(laptop, "/profile"); r.status != http.StatusOK {
		t.Errorf("this session after the change: %d, want 200", r.status)
	}
	if r := b.get(phone, "/profile"); r.status != http.StatusUnauthorized {
		t.Errorf("the other session after the change: %d, want 401", r.status)
	}
	if rows := sessionRows(t, a.get(laptop, "/sessions").body); len(rows) != 1 || !rows[0].current {
		t.Errorf("after the change the list is %+v, want this device only", rows)
	}
	c := browser(t, chromeWin)
	if r := a.post(c, "/login", url.Values{"username": {"alice"}, "password": {"old-password"}}); r.status != http.StatusUnauthorized {
		t.Errorf("login with the old password: %d, want 401", r.status)
	}
	a.login(c, "alice", "new-password")
}

// Logging out removes the session from the index, and logging in again
// replaces the renewed token's entry instead of adding one.
func TestIndexFollowsLoginAndLogout(t *testing.T) {
	rs := redistest.Start(t)
	a := newLiveApp(t, rs, "a")
	rdb := newRedisClient(t, rs)
	laptop, phone := browser(t, firefoxLinux), browser(t, safariIPhone)
	a.register(laptop, "alice", "alice-password")
	a.login(phone, "alice", "alice-password")
	a.login(phone, "alice", "alice-password") // renewed: same device, one entry
	hlen := func() int64 {
		n, err := rdb.Do(context.Background(), rdb.B().Hlen().Key(sessions.IndexKey("alice")).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := hlen(); n != 2 {
		t.Errorf("index holds %d entries after two devices logged in, want 2", n)
	}
	a.post(phone, "/logout", nil)
	if n := hlen(); n != 1 {
		t.Errorf("index holds %d entries after the phone logged out, want 1", n)
	}
}

func apptestClient(t *testing.T) *http.Client { return browser(t, chromeWin) }

// "Log out everywhere else" says it is done, with JavaScript (the list
// fragment carries the notice) and without (the page after the redirect).
func TestLogOutEverywhereElseSaysItIsDone(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "ned", "ned-password")
	const done = "Every other session of yours is logged out."
	// htmx is sent to the page that says so: this tab's token was renewed,
	// and a list swapped in would be reloaded away with the old token's
	// stream (TestBrowserLogOutEverywhereElseKeepsItsNotice).
	if r := ta.post(c, "/sessions/revoke-others", nil, "HX-Request", "true", "HX-Target", views.IDSessionList); r.status != http.StatusNoContent || r.header.Get("HX-Redirect") != "/sessions?from=revoked-others" {
		t.Errorf("htmx answer: %d, HX-Redirect %q; want 204 to /sessions?from=revoked-others", r.status, r.header.Get("HX-Redirect"))
	}
	if r := ta.get(c, "/sessions?from=revoked-others"); !strings.Contains(r.body, done) {
		t.Errorf("the page after the redirect lacks the notice")
	}
}

// The sessions page's Created is the session's start, as the profile says
// it: a session counted anonymously and then logged in keeps its start in
// the index, and so does a renewal (a password change).
func TestSessionsPageCreatedIsTheSessionsStart(t *testing.T) {
	a := newTestApp(t)
	c := a.client()
	a.get(c, "/count") // the session starts here, anonymously
	origin := func() string {
		var env struct {
			Values struct {
				Origin struct{ At time.Time }
			}
		}
		if err := json.Unmarshal([]byte(a.redis.MustDo("GET", sessions.Key(a.token(c)))), &env); err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(env.Values.Origin.At.UnixMilli(), 10)
	}
	started := origin()
	time.Sleep(20 * time.Millisecond)
	a.register(c, "dora", "dora-password")
	for _, step := range []string{"after the login", "after a password change"} {
		if step == "after a password change" {
			if r := a.post(c, "/password", url.Values{"current": {"dora-password"}, "new": {"dora-password-2"}}); r.status != http.StatusSeeOther {
				t.Fatalf("change password: %d\n%s", r.status, r.body)
			}
		}
		e := a.redis.MustDo("HGET", sessions.IndexKey("dora"), sessions.ID(a.token(c)))
		if !strings.Contains(e, `"created":`+started+",") || origin() != started {
			t.Errorf("%s the index entry is %s, the session's origin at %s: want created = %s", step, e, origin(), started)
		}
	}
}

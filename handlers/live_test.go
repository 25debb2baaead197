package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/live"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// A count on one instance reaches the open page of the same session on
// another instance, through Redis pub/sub: no polling.
func TestCountReachesAStreamOnAnotherInstance(t *testing.T) {
	rs := redistest.Start(t)
	a, b := newLiveApp(t, rs, "a"), newLiveApp(t, rs, "b")
	tests := []struct {
		name  string
		login bool
	}{
		{"anonymous session", false},
		{"logged-in session", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := browser(t, firefoxLinux)
			if tt.login {
				a.register(c, fmt.Sprintf("user%d", i), "a-long-password")
			}
			a.get(c, "/count") // count 1 creates an anonymous session
			s := apptest.OpenStream(t, c, b.srv.URL+"/live")
			if s.Status != http.StatusOK {
				t.Fatalf("GET /live: %d", s.Status)
			}
			for want := 2; want <= 4; want++ {
				a.get(c, "/count")
				if ev := s.Next(views.SSECount); ev.Data != fmt.Sprint(want) {
					t.Errorf("count event = %q, want %d", ev.Data, want)
				}
			}
		})
	}
}

// Another browser's count does not reach this session's stream.
func TestCountStaysWithinItsSession(t *testing.T) {
	rs := redistest.Start(t)
	a := newLiveApp(t, rs, "a")
	mine, theirs := browser(t, firefoxLinux), browser(t, chromeWin)
	// Different counts, so an event from the other session cannot pass
	// for this one's.
	a.get(mine, "/count")
	for range 4 {
		a.get(theirs, "/count")
	}
	s := apptest.OpenStream(t, mine, a.srv.URL+"/live")
	a.get(theirs, "/count") // theirs: 5
	a.get(mine, "/count")   // mine: 2
	if ev := s.Next(views.SSECount); ev.Data != "2" {
		t.Errorf("first count event = %q, want 2 (this session's own count; the other session's is 5)", ev.Data)
	}
}

// A revoked session's page is told (views.SSEEnded, which sends it to the login
// page) and its stream ends; the user's other pages hear that the list
// changed, as they do when the user logs in elsewhere.
func TestRevokeReachesThePagesOfBothSessions(t *testing.T) {
	rs := redistest.Start(t)
	a, b := newLiveApp(t, rs, "a"), newLiveApp(t, rs, "b")
	laptop, phone := browser(t, firefoxLinux), browser(t, safariIPhone)
	a.register(laptop, "alice", "alice-password")
	laptopStream := apptest.OpenStream(t, laptop, a.srv.URL+"/live")

	b.login(phone, "alice", "alice-password")
	laptopStream.Next(views.SSESessions) // a login elsewhere
	phoneStream := apptest.OpenStream(t, phone, b.srv.URL+"/live")

	a.post(laptop, "/sessions/"+sessions.ID(b.token(phone))+"/revoke", nil)
	phoneStream.Next(views.SSEEnded)
	if !phoneStream.Ended() {
		t.Errorf("the revoked session's stream did not end")
	}
	laptopStream.Next(views.SSESessions)
	// What the page does on views.SSEEnded: GET /profile, which sends it to log in.
	r := b.get(phone, "/profile", "HX-Request", "true")
	if r.status != http.StatusUnauthorized || r.header.Get("HX-Redirect") != "/login?from=expired" {
		t.Errorf("revoked page's GET /profile: %d, HX-Redirect %q", r.status, r.header.Get("HX-Redirect"))
	}
}

// Leaving a page ends its stream; reloads do not pile up streams or Redis
// subscriptions, and a request without a session gets no stream.
func TestStreamsAndSubscriptionsDoNotGrowWithReloads(t *testing.T) {
	rs := redistest.Start(t)
	a := newLiveApp(t, rs, "a")
	rdb := newRedisClient(t, rs)
	c := browser(t, firefoxLinux)
	a.register(c, "alice", "alice-password")
	channel := sessions.SessionChannel(sessions.ID(a.token(c)))

	for range 5 {
		tabs := []*apptest.Stream{apptest.OpenStream(t, c, a.srv.URL+"/live"), apptest.OpenStream(t, c, a.srv.URL+"/live")}
		// Channels: the session's, its user's, and its address's browsers.
		if got := a.operator("/debug/live").body; got != "streams 2\nchannels 3\n" {
			t.Fatalf("two open tabs: /debug/live = %q, want 2 streams on 3 channels", got)
		}
		for _, s := range tabs {
			s.Close()
		}
		waitFor(t, "streams to close", func() bool { return a.operator("/debug/live").body == "streams 0\nchannels 0\n" })
	}
	// The hub forgets a channel, then unsubscribes in Redis: /debug/live can
	// say 0 a moment before Redis does.
	waitFor(t, "Redis to have no subscriber on the session's channel", func() bool {
		n, err := rdb.Do(context.Background(), rdb.B().PubsubNumsub().Channel(channel).Build()).AsIntMap()
		return err == nil && n[channel] == 0
	})

	// Without a session the stream is its hello alone: who answered, and
	// that there is no session.
	if s := apptest.OpenStream(t, apptestClient(t), a.srv.URL+"/live"); s.Status != http.StatusOK {
		t.Errorf("GET /live without a session: %d, want 200", s.Status)
	} else if ev := s.Next(views.SSEHello); !strings.Contains(ev.Data, `data-session="false"`) {
		t.Errorf("hello without a session = %q", ev.Data)
	}
	// The server's read and write timeouts must not cut streams.
	if strings.Contains(a.logs.String(), "cannot lift") {
		t.Errorf("the stream could not lift the server's deadlines:\n%s", a.logs.String())
	}
}

// Closing the hub (server shutdown) ends every stream.
func TestHubCloseEndsStreams(t *testing.T) {
	rs := redistest.Start(t)
	a := newLiveApp(t, rs, "a")
	c := browser(t, firefoxLinux)
	a.get(c, "/count")
	s := apptest.OpenStream(t, c, a.srv.URL+"/live")
	a.app.Live.Close()
	if !s.Ended() {
		t.Errorf("stream still open after the hub closed")
	}
}

// Shortly before a session would end, its page gets the "stay signed in"
// warning over the stream.
func TestStreamWarnsBeforeTheSessionEnds(t *testing.T) {
	rs := redistest.Start(t)
	a := newTestAppWith(t, rs, func(c *Config) { c.Instance = "a"; c.Idle = 90 * time.Second }) // touches every 9 s
	c := browser(t, firefoxLinux)
	a.register(c, "alice", "alice-password")
	s := apptest.OpenStream(t, c, a.srv.URL+"/live")
	ev := s.Next(views.SSEIdle) // the idle deadline is already within two minutes
	if !strings.Contains(ev.Data, `data-testid="idle-warning"`) || !strings.Contains(ev.Data, `data-testid="stay-button"`) {
		t.Errorf("idle event = %q, want the warning with the stay-signed-in button", ev.Data)
	}
}

// "Stay signed in" touches the session: its key's expiry moves to a full
// idle timeout from now.
func TestStaySignedInMovesTheIdleDeadline(t *testing.T) {
	rs := redistest.Start(t)
	a := newLiveApp(t, rs, "a", func(a *App) { a.TouchEvery = time.Hour })
	rdb := newRedisClient(t, rs)
	c := browser(t, firefoxLinux)
	a.register(c, "alice", "alice-password")
	key := sessions.Key(a.token(c))
	ctx := context.Background()
	if err := rdb.Do(ctx, rdb.B().Pexpire().Key(key).Milliseconds(60_000).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	r := a.post(c, "/session/touch", nil, "HX-Request", "true")
	if r.status != http.StatusOK || !strings.Contains(r.body, `data-testid="touched"`) {
		t.Fatalf("POST /session/touch: %d\n%s", r.status, r.body)
	}
	if !strings.Contains(r.body, `id="idle-deadline" data-testid="idle-deadline" hx-swap-oob="true"`) {
		t.Errorf("the answer does not update the profile's idle-timeout line:\n%s", r.body)
	}
	ttl, err := rdb.Do(ctx, rdb.B().Pttl().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	if ttl < (a.app.Idle - time.Minute).Milliseconds() {
		t.Errorf("TTL after stay signed in = %v, want about the idle timeout %v", time.Duration(ttl)*time.Millisecond, a.app.Idle)
	}
	if r := a.post(apptestClient(t), "/session/touch", nil); r.status != http.StatusUnauthorized {
		t.Errorf("touch without login: %d, want 401", r.status)
	}
	if r := a.get(c, "/profile"); !strings.Contains(r.body, `data-testid="stay-button"`) {
		t.Errorf("the profile has no stay-signed-in button")
	}
}

// waitFor polls cond until it holds; it fails after 10 seconds (it holds in
// milliseconds; the bound only stops a broken test).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// HEAD /live answers with headers and ends; it holds no stream.
func TestHeadLiveEnds(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	c.Timeout = 3 * time.Second
	ta.register(c, "hal", "hal-password")
	req, _ := http.NewRequest(http.MethodHead, ta.srv.URL+"/live", nil)
	if r := ta.do(c, req); r.status != http.StatusOK {
		t.Fatalf("HEAD /live: %d", r.status)
	}
	if r := ta.operator("/debug/live"); !strings.Contains(r.body, "streams 0") {
		t.Errorf("after HEAD /live:\n%s", r.body)
	}
}

// "Stay signed in" works without JavaScript too: it is a form, and the
// plain POST answers with the profile.
func TestStaySignedInWorksWithoutJavaScript(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "sid", "sid-password")
	if p := ta.get(c, "/profile"); !strings.Contains(p.body, `<form method="post" action="/session/touch"`) {
		t.Fatalf("the profile has no stay-signed-in form:\n%s", p.body)
	}
	if r := ta.post(c, "/session/touch", nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/profile" {
		t.Errorf("plain POST /session/touch: %d to %q, want 303 to /profile", r.status, r.header.Get("Location"))
	}
}

// Pages open on a session hear when it ends: on logout, and when a login
// (in another tab) renews its token.
func TestOpenPagesHearWhenTheirSessionEnds(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.get(c, "/count")
	anon := hear(t, ta, ta.token(c))
	ta.register(c, "tia", "tia-password")
	wantRevoked(t, "login", anon)

	loggedIn := hear(t, ta, ta.token(c))
	ta.post(c, "/logout", nil)
	wantRevoked(t, "logout", loggedIn)
}

// What a page's hook hears once its session ended: go to the login page
// when the browser has no session any more, reload when it holds a new one.
func TestSessionHookSaysWhereToGo(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "uma", "uma-password")
	hook := []string{"HX-Request", "true", "HX-Trigger", views.IDSessionHook}

	if r := ta.get(c, "/profile", hook...); r.status != http.StatusNoContent || r.header.Get("HX-Refresh") != "true" {
		t.Errorf("logged in (a new session): %d, HX-Refresh %q; want 204 and a reload", r.status, r.header.Get("HX-Refresh"))
	}
	if r := ta.get(ta.client(), "/profile", hook...); r.status != http.StatusNoContent || r.header.Get("HX-Redirect") != "/login?from=logout" {
		t.Errorf("no cookie: %d, HX-Redirect %q; want 204 to /login?from=logout", r.status, r.header.Get("HX-Redirect"))
	}
	if r := ta.get(c, "/profile", "HX-Request", "true"); r.status != http.StatusOK {
		t.Errorf("an ordinary htmx GET /profile: %d", r.status)
	}
}

// The sessions page's list refreshes itself when the user's sessions change,
// and a logout is such a change: the tab that clicked "Log out" hears it
// while its own form is still on its way. The refresh must not send that tab
// to the login page as if its session had expired or been revoked; it leaves
// the page to the session-ended hook, which waits for the tab's own
// navigation and knows a logout from a revoke.
func TestSessionListRefreshLeavesAnEndedSessionToTheHook(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "vic", "vic-password")
	tab := ta.clientWithToken(ta.token(c)) // the tab, its cookie not cleared yet
	if r := ta.post(c, "/logout", nil); r.status != http.StatusSeeOther {
		t.Fatalf("logout: %d", r.status)
	}
	refresh := []string{"HX-Request", "true", "HX-Trigger", views.IDSessionList, "HX-Target", views.IDSessionList}
	for _, tc := range []struct {
		name string
		c    *http.Client
	}{{"cookie of the ended session", tab}, {"no cookie", ta.client()}} {
		r := ta.get(tc.c, "/sessions", refresh...)
		if r.status != http.StatusNoContent || r.header.Get("HX-Redirect") != "" || r.header.Get("HX-Refresh") != "" {
			t.Errorf("%s: the list's refresh answered %d, HX-Redirect %q, HX-Refresh %q; want 204 and nothing else",
				tc.name, r.status, r.header.Get("HX-Redirect"), r.header.Get("HX-Refresh"))
		}
	}
	// A revoke from this page still says where the session went.
	r := ta.post(tab, "/sessions/x/revoke", nil, "HX-Request", "true", "HX-Target", views.IDSessionList)
	if r.header.Get("HX-Redirect") != "/login?from=expired" {
		t.Errorf("a revoke sent with the ended session: %d, HX-Redirect %q; want /login?from=expired", r.status, r.header.Get("HX-Redirect"))
	}
}

// hear subscribes to a session's live channel, as its open pages do.
func hear(t *testing.T, ta *testApp, token string) *live.Sub {
	t.Helper()
	sub, err := ta.app.Live.Subscribe(context.Background(), sessions.SessionChannel(sessions.ID(token)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ta.app.Live.Unsubscribe(sub) })
	return sub
}

func wantRevoked(t *testing.T, what string, sub *live.Sub) {
	t.Helper()
	// As long as the package's other waits on a stream: it ends as the
	// message comes, and a loaded machine delivers pub/sub late.
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-sub.C:
			if m.Payload == sessions.MsgEnded {
				return
			}
		case <-timeout:
			t.Errorf("%s: the session's open pages heard no %q", what, sessions.MsgEnded)
			return
		}
	}
}

package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// browserRow is one row of /count's "browsers on this computer".
type browserRow struct {
	device, login, views string
	this                 bool
}

var (
	browserRowRe  = regexp.MustCompile(`(?s)<tr data-testid="browser-row"( data-this="true")?.*?>(.*?)</tr>`)
	browserCellRe = regexp.MustCompile(`(?s)data-testid="browser-(device|login|views)">\s*(?:<span id="this-browser-views"[^>]*>)?([^<]*)`)
)

func browserRows(t *testing.T, body string) []browserRow {
	t.Helper()
	var rows []browserRow
	for _, m := range browserRowRe.FindAllStringSubmatch(body, -1) {
		r := browserRow{this: m[1] != ""}
		for _, c := range browserCellRe.FindAllStringSubmatch(m[2], -1) {
			v := strings.TrimSpace(c[2])
			switch c[1] {
			case "device":
				r.device = v
			case "login":
				r.login = v
			case "views":
				r.views = v
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// behind returns a client whose requests come through a trusted proxy on
// behalf of addr, so each test can give its browsers an address.
func behind(t *testing.T, userAgent, addr string) *http.Client {
	t.Helper()
	c := apptest.Client(t)
	c.Transport = proxied{ua: userAgent, addr: addr}
	return c
}

type proxied struct{ ua, addr string }

func (p proxied) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", p.ua)
	r.Header.Set("X-Forwarded-For", p.addr)
	return http.DefaultTransport.RoundTrip(r)
}

func trustLoopback(a *App) { a.TrustedProxies = Proxies{netip.MustParsePrefix("127.0.0.1/32")} }

func TestBrowsersOnThisComputer(t *testing.T) {
	t.Run("two browsers from one address see each other's counts, newest first, each marking itself", func(t *testing.T) {
		ta := newTestApp(t, trustLoopback)
		ff := behind(t, firefoxLinux, "203.0.113.7")
		ch := behind(t, chromeWin, "203.0.113.7")
		ta.get(ff, "/count")
		ta.get(ff, "/count")
		rows := browserRows(t, ta.get(ch, "/count").body)
		want := []browserRow{
			{device: "Chrome on Windows", login: "anonymous", views: "1", this: true},
			{device: "Firefox on Linux", login: "anonymous", views: "2"},
		}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("Chrome's page: rows %+v, want %+v", rows, want)
		}
		rows = browserRows(t, ta.get(ff, "/count").body)
		want = []browserRow{
			{device: "Firefox on Linux", login: "anonymous", views: "3", this: true},
			{device: "Chrome on Windows", login: "anonymous", views: "1"},
		}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("Firefox's page: rows %+v, want %+v", rows, want)
		}
	})

	t.Run("another address sees only its own browsers", func(t *testing.T) {
		ta := newTestApp(t, trustLoopback)
		ta.get(behind(t, firefoxLinux, "203.0.113.7"), "/count")
		rows := browserRows(t, ta.get(behind(t, chromeWin, "198.51.100.9"), "/count").body)
		if len(rows) != 1 || !rows[0].this {
			t.Errorf("rows from another address: %+v, want only this browser", rows)
		}
	})

	t.Run("another session's user name and any token never reach the page", func(t *testing.T) {
		ta := newTestApp(t, trustLoopback)
		alice := behind(t, firefoxLinux, "203.0.113.7")
		ta.register(alice, "alice", "alice-password")
		ta.get(alice, "/count")
		anon := behind(t, chromeWin, "203.0.113.7")
		body := ta.get(anon, "/count").body
		rows := browserRows(t, body)
		if len(rows) != 2 || rows[1].login != "logged in" || rows[0].login != "anonymous" {
			t.Fatalf("rows %+v, want this anonymous browser and a logged-in one", rows)
		}
		if strings.Contains(body, "alice") {
			t.Error("the anonymous browser's page names alice")
		}
		for _, tok := range []string{ta.token(alice), ta.token(anon)} {
			if strings.Contains(body, tok) || strings.Contains(body, sessions.ID(tok)) {
				t.Errorf("the page holds a token or a session id (%s…)", tok[:6])
			}
		}
	})

	t.Run("a logged-out session leaves the list: one browser never shows as two", func(t *testing.T) {
		ta := newTestApp(t, trustLoopback)
		ff := behind(t, firefoxLinux, "203.0.113.7")
		ta.register(ff, "alice", "alice-password")
		ta.get(ff, "/count")
		ta.get(ff, "/count")
		if r := ta.post(ff, "/logout", nil); r.status != http.StatusSeeOther {
			t.Fatalf("logout: status %d, want 303", r.status)
		}
		// The same browser, now anonymous, counts on.
		ta.get(ff, "/count")
		rows := browserRows(t, ta.get(ff, "/count").body)
		want := []browserRow{{device: "Firefox on Linux", login: "anonymous", views: "2", this: true}}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("rows after logout %+v, want %+v (the ended session's row still says logged in)", rows, want)
		}
		lab := ta.get(ff, "/lab").body
		if !strings.Contains(lab, `data-step="browsers" data-done="false"`) {
			t.Error("the lab ticks Two browsers for one browser and its own ended session")
		}
	})

	t.Run("a session that ended on its own leaves the list when its browser counts again", func(t *testing.T) {
		for _, end := range []struct {
			name string
			do   func(ta *testApp, key string) error
		}{
			{"deleted", func(ta *testApp, key string) error { _, err := ta.redis.Do("DEL", key); return err }},
			{"made a hash", func(ta *testApp, key string) error {
				if _, err := ta.redis.Do("DEL", key); err != nil {
					return err
				}
				_, err := ta.redis.Do("HSET", key, "views", "7")
				return err
			}},
			{"not a session", func(ta *testApp, key string) error {
				_, err := ta.redis.Do("SET", key, "not json", "KEEPTTL")
				return err
			}},
		} {
			for _, click := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s, next count a click: %v", end.name, click), func(t *testing.T) {
					ta := newTestApp(t, trustLoopback)
					ff := behind(t, firefoxLinux, "203.0.113.7")
					ta.get(ff, "/count")
					if err := end.do(ta, sessions.Key(ta.token(ff))); err != nil {
						t.Fatal(err)
					}
					if click {
						// The counter's click is sent to the page that says why,
						// which lets the ended cookie go; the next count starts anew.
						r := ta.get(ff, "/count", "HX-Request", "true", "HX-Target", views.IDViewCount)
						to := r.header.Get("HX-Redirect")
						if r.status != http.StatusUnauthorized || to == "" {
							t.Fatalf("the click: %d to %q, want 401 and a page that says why", r.status, to)
						}
						ta.get(ff, to)
					}
					ta.get(ff, "/count") // a new session
					assertOneBrowser(t, ta, ff, browserRow{device: "Firefox on Linux", login: "anonymous", views: "2", this: true})
				})
			}
		}
	})

	t.Run("a session that ended on its own leaves the list when its browser logs in", func(t *testing.T) {
		ta := newTestApp(t, trustLoopback)
		ta.register(ta.client(), "quinn", "quinn-password")
		ff := behind(t, firefoxLinux, "203.0.113.7")
		ta.get(ff, "/count")
		ta.get(ff, "/count")
		ta.get(ff, "/login") // the form, while the session lives
		ta.redis.MustDo("DEL", sessions.Key(ta.token(ff)))
		if r := ta.post(ff, "/login", url.Values{"username": {"quinn"}, "password": {"quinn-password"}}); r.status != http.StatusSeeOther {
			t.Fatalf("login: %d", r.status)
		}
		assertOneBrowser(t, ta, ff, browserRow{device: "Firefox on Linux", login: "logged in", views: "1", this: true})
	})

	t.Run("a revoked session leaves its computer's list", func(t *testing.T) {
		ta := newTestApp(t, trustLoopback)
		ff, phone := behind(t, firefoxLinux, "203.0.113.7"), behind(t, safariIPhone, "203.0.113.7")
		ta.register(ff, "bea", "bea-password")
		ta.login(phone, "bea", "bea-password")
		ta.get(ff, "/count")
		ta.get(phone, "/count")
		if rows := browserRows(t, ta.get(ff, "/count").body); len(rows) != 2 {
			t.Fatalf("before the revoke: %+v, want both browsers", rows)
		}
		if r := ta.post(ff, "/sessions/"+sessions.ID(ta.token(phone))+"/revoke", nil); r.status != http.StatusOK && r.status != http.StatusSeeOther {
			t.Fatalf("revoke: %d\n%s", r.status, r.body)
		}
		rows := browserRows(t, ta.get(ff, "/count").body)
		want := []browserRow{{device: "Firefox on Linux", login: "logged in", views: "3", this: true}}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("rows after the phone's session was revoked %+v, want %+v (its row still says logged in)", rows, want)
		}
	})

	for _, end := range []struct {
		how  string
		path string
		form url.Values
	}{
		{"logging out everywhere else", "/sessions/revoke-others", nil},
		{"a password change", "/password", url.Values{"current": {"bea-password"}, "new": {"bea-new-password"}}},
	} {
		t.Run("the sessions ended by "+end.how+" leave their computers' lists", func(t *testing.T) {
			ta := newTestApp(t, trustLoopback)
			ff, phone := behind(t, firefoxLinux, "203.0.113.7"), behind(t, safariIPhone, "203.0.113.7")
			tablet := behind(t, chromeWin, "198.51.100.9")
			ta.register(ff, "bea", "bea-password")
			ta.login(phone, "bea", "bea-password")
			ta.login(tablet, "bea", "bea-password")
			for _, c := range []*http.Client{ff, phone, tablet} {
				ta.get(c, "/count")
			}
			if r := ta.post(ff, end.path, end.form); r.status != http.StatusSeeOther {
				t.Fatalf("POST %s: %d, want 303\n%s", end.path, r.status, r.body)
			}
			rows := browserRows(t, ta.get(ff, "/count").body)
			want := []browserRow{{device: "Firefox on Linux", login: "logged in", views: "2", this: true}}
			if fmt.Sprint(rows) != fmt.Sprint(want) {
				t.Errorf("rows after %s %+v, want %+v (the phone's ended session still says logged in)", end.how, rows, want)
			}
			rdb := ta.redis.Client(t)
			n, err := rdb.Do(context.Background(), rdb.B().Hlen().Key(sessions.BrowsersKey("198.51.100.9")).Build()).AsInt64()
			if err != nil || n != 0 {
				t.Errorf("the other computer's list holds %d rows (%v), want the ended session's gone", n, err)
			}
		})
	}

	// A laptop that logged in on one network and counted on another: its
	// row is on the list of the address it counted from, which the index
	// entry's ip (the login's) does not name.
	for _, end := range []struct {
		how, path string
		form      url.Values
	}{
		{"a revoke", "", nil},
		{"'log out everywhere else'", "/sessions/revoke-others", nil},
	} {
		t.Run("the sessions ended by "+end.how+" leave the list of the computer they last counted from", func(t *testing.T) {
			ta := newTestApp(t, trustLoopback)
			ff := behind(t, firefoxLinux, "203.0.113.7")
			laptop := behind(t, chromeWin, "198.51.100.9")
			ta.register(ff, "cyd", "cyd-password")
			ta.login(laptop, "cyd", "cyd-password")
			laptop.Transport = proxied{ua: chromeWin, addr: "192.0.2.50"} // moved, cookie kept
			ta.get(laptop, "/count")
			path := end.path
			if path == "" {
				path = "/sessions/" + sessions.ID(ta.token(laptop)) + "/revoke"
			}
			if r := ta.post(ff, path, end.form); r.status != http.StatusSeeOther {
				t.Fatalf("POST %s: %d, want 303\n%s", path, r.status, r.body)
			}
			rows := browserRows(t, ta.get(behind(t, safariIPhone, "192.0.2.50"), "/count").body)
			for _, r := range rows {
				if r.login == "logged in" {
					t.Errorf("rows on the laptop's new network after %s: %+v; the ended session still says logged in", end.how, rows)
				}
			}
		})
	}

	t.Run("at most ten browsers are listed and kept per address", func(t *testing.T) {
		ta := newTestApp(t, trustLoopback)
		for range sessions.MaxBrowsers + 3 {
			ta.get(behind(t, firefoxLinux, "203.0.113.7"), "/count")
		}
		last := behind(t, chromeWin, "203.0.113.7")
		if rows := browserRows(t, ta.get(last, "/count").body); len(rows) != sessions.MaxBrowsers || !rows[0].this {
			t.Errorf("%d rows (first %+v), want %d with this browser first", len(rows), rows[0], sessions.MaxBrowsers)
		}
		rdb := ta.redis.Client(t)
		n, err := rdb.Do(context.Background(), rdb.B().Hlen().Key(sessions.BrowsersKey("203.0.113.7")).Build()).AsInt64()
		if err != nil || n != sessions.MaxBrowsers {
			t.Errorf("HLEN = %d, %v; want %d", n, err, sessions.MaxBrowsers)
		}
	})

	t.Run("the list expires by itself, and a browser quiet for the window drops off", func(t *testing.T) {
		ta := newTestApp(t, trustLoopback)
		ff := behind(t, firefoxLinux, "203.0.113.7")
		ta.get(ff, "/count")
		rdb := ta.redis.Client(t)
		key := sessions.BrowsersKey("203.0.113.7")
		ctx := context.Background()
		ttl, err := rdb.Do(ctx, rdb.B().Pttl().Key(key).Build()).AsInt64()
		if err != nil || ttl <= 0 || ttl > sessions.BrowsersExpiry.Milliseconds() {
			t.Errorf("PTTL %s = %d, %v; want within %v", key, ttl, err, sessions.BrowsersExpiry)
		}
		// Firefox last counted a window ago: its row and its time in the set.
		old := time.Now().Add(-sessions.BrowsersWindow - time.Second).UnixMilli()
		entry := fmt.Sprintf(`{"device":"Firefox on Linux","logged_in":false,"views":1,"at":%d}`, old)
		if err := rdb.Do(ctx, rdb.B().Hset().Key(key).FieldValue().FieldValue(sessions.ID(ta.token(ff)), entry).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		seen := sessions.BrowsersSeenKey("203.0.113.7")
		if err := rdb.Do(ctx, rdb.B().Zadd().Key(seen).ScoreMember().ScoreMember(float64(old), sessions.ID(ta.token(ff))).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		rows := browserRows(t, ta.get(behind(t, chromeWin, "203.0.113.7"), "/count").body)
		if len(rows) != 1 || rows[0].device != "Chrome on Windows" {
			t.Errorf("rows %+v, want Chrome alone", rows)
		}
		if exists, _ := rdb.Do(ctx, rdb.B().Hexists().Key(key).Field(sessions.ID(ta.token(ff))).Build()).AsBool(); exists {
			t.Error("the quiet browser's entry is still stored")
		}
		if n, _ := rdb.Do(ctx, rdb.B().Zcard().Key(seen).Build()).AsInt64(); n != 1 {
			t.Errorf("ZCARD %s = %d, want 1: the quiet browser is still counted", seen, n)
		}
	})

	t.Run("a page that starts listening gets the list as it is", func(t *testing.T) {
		ta := newTestApp(t, trustLoopback)
		ff := behind(t, firefoxLinux, "203.0.113.7")
		ch := behind(t, chromeWin, "203.0.113.7")
		ta.get(ff, "/count")
		ta.get(ch, "/count")
		ta.get(ch, "/count")
		rows := browserRows(t, apptest.OpenStream(t, ff, ta.srv.URL+"/live").Next(views.SSEBrowsers).Data)
		want := []browserRow{
			{device: "Chrome on Windows", login: "anonymous", views: "2"},
			{device: "Firefox on Linux", login: "anonymous", views: "1", this: true},
		}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("list sent when the stream opened: %+v, want %+v", rows, want)
		}
	})

	t.Run("a count on one instance reaches the list on another, rendered for each browser", func(t *testing.T) {
		rs := redistest.Start(t)
		a := newLiveApp(t, rs, "a", trustLoopback)
		b := newLiveApp(t, rs, "b", trustLoopback)
		ff := behind(t, firefoxLinux, "203.0.113.7")
		ch := behind(t, chromeWin, "203.0.113.7")
		a.get(ff, "/count")
		b.get(ch, "/count")
		s := apptest.OpenStream(t, ff, a.srv.URL+"/live")
		first := s.Next(views.SSEBrowsers) // the list as it was when the page started listening
		b.get(ch, "/count")
		// The page's own opening is published to the address too (its
		// Page column): the same list, once, before the count's.
		ev := s.Next(views.SSEBrowsers)
		if ev.Data == first.Data {
			ev = s.Next(views.SSEBrowsers)
		}
		rows := browserRows(t, ev.Data)
		want := []browserRow{
			{device: "Chrome on Windows", login: "anonymous", views: "2"},
			{device: "Firefox on Linux", login: "anonymous", views: "1", this: true},
		}
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("list pushed to Firefox's page: %+v, want %+v", rows, want)
		}
	})
}

func TestSessionsPageShowsEachSessionsCount(t *testing.T) {
	ta := newTestApp(t)
	laptop := browser(t, firefoxLinux)
	ta.register(laptop, "alice", "alice-password")
	phone := browser(t, safariIPhone)
	ta.login(phone, "alice", "alice-password")
	for range 3 {
		ta.get(phone, "/count")
	}
	ta.get(laptop, "/count")
	body := ta.get(laptop, "/sessions").body
	got := regexp.MustCompile(`data-testid="session-device">([^<]*)</td>.*?data-testid="session-views">(\d+)<`).FindAllStringSubmatch(body, -1)
	var pairs []string
	for _, m := range got {
		pairs = append(pairs, m[1]+"="+m[2])
	}
	if want := "Firefox on Linux=1 Safari on iOS=3"; strings.Join(pairs, " ") != want && strings.Join(pairs, " ") != "Safari on iOS=3 Firefox on Linux=1" {
		t.Errorf("counts on the sessions page: %v, want %s", pairs, want)
	}
}

// localhost may reach the app as ::1 in one browser and 127.0.0.1 in
// another: both are this computer, one list, named in words.
func TestBrowsersOnLoopbackAreOneComputer(t *testing.T) {
	ta := newTestApp(t, trustLoopback)
	v6 := behind(t, firefoxLinux, "::1")
	v4 := behind(t, chromeWin, "127.0.0.1")
	ta.get(v6, "/count")
	body := ta.get(v4, "/count").body
	if rows := browserRows(t, body); len(rows) != 2 {
		t.Errorf("a browser on 127.0.0.1 lists %d browsers (%+v), want 2: the one on ::1 is the same computer", len(rows), rows)
	}
	if !strings.Contains(body, "from this computer") || strings.Contains(body, "your Internet address") {
		t.Errorf("the list does not say the browsers are on this computer")
	}
	other := ta.get(behind(t, chromeWin, "203.0.113.7"), "/count").body
	if !strings.Contains(other, "your Internet address (<code>203.0.113.7</code>") {
		t.Errorf("a remote browser's list does not name its address")
	}
}

// assertOneBrowser: after its session ended, ff counts in a new one and is
// listed once, as want, with the lab's "Two browsers" not done.
func assertOneBrowser(t *testing.T, ta *testApp, ff *http.Client, row browserRow) {
	t.Helper()
	rows := browserRows(t, ta.get(ff, "/count").body)
	want := []browserRow{row}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("rows %+v, want %+v: the ended session's row stays as another browser", rows, want)
	}
	if lab := ta.get(ff, "/lab").body; !strings.Contains(lab, `data-step="browsers" data-done="false"`) {
		t.Error("the lab ticks Two browsers for one browser and its own ended session")
	}
}

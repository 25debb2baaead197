package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// A stream ends (views.SSEEnded, then the end of the response) when its
// session ends, by any path, whether or not the session is in its user's
// index: the credential generation reaches sessions the index lost.
func TestAStreamEndsWithItsSession(t *testing.T) {
	rs := redistest.Start(t)
	a := newLiveApp(t, rs, "a")
	rdb := newRedisClient(t, rs)
	unindex := func(t *testing.T, user, token string) {
		t.Helper()
		err := rdb.Do(context.Background(), rdb.B().Hdel().Key(sessions.IndexKey(user)).Field(sessions.ID(token)).Build()).Error()
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		indexed bool
		end     func(t *testing.T, user string, other *http.Client, token string)
	}{
		{"logout", true, nil},
		{"revoked from another browser", true, func(t *testing.T, user string, other *http.Client, token string) {
			a.post(other, "/sessions/"+sessions.ID(token)+"/revoke", nil)
		}},
		{"password changed elsewhere", true, func(t *testing.T, user string, other *http.Client, token string) { changePassword(t, a, other) }},
		{"password changed elsewhere, missing from the index", false, func(t *testing.T, user string, other *http.Client, token string) { changePassword(t, a, other) }},
		{"log out everywhere else, missing from the index", false, func(t *testing.T, user string, other *http.Client, token string) {
			a.post(other, "/sessions/revoke-others", nil)
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user := "user" + string(rune('a'+i))
			mine, other := browser(t, firefoxLinux), browser(t, chromeWin)
			a.register(mine, user, "old-password")
			a.login(other, user, "old-password")
			token := a.token(mine)
			if !tt.indexed {
				unindex(t, user, token)
			}
			s := apptest.OpenStream(t, mine, a.srv.URL+"/live")
			s.Next(views.SSEHello)
			if tt.end == nil {
				a.post(mine, "/logout", nil)
			} else {
				tt.end(t, user, other, token)
			}
			if r := a.get(mine, "/profile"); r.status != http.StatusUnauthorized && r.status != http.StatusSeeOther {
				t.Fatalf("the session did not end: /profile answered %d", r.status)
			}
			s.Next(views.SSEEnded)
			if !s.Ended() {
				t.Error("the stream stayed open after its ended event")
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		b := newTestAppWith(t, rs, func(c *Config) { c.Instance = "b"; c.Idle = 2 * time.Second })
		c := browser(t, firefoxLinux)
		b.register(c, "exp", "exp-password")
		s := apptest.OpenStream(t, c, b.srv.URL+"/live")
		if ev := s.Next(views.SSEEnded); ev.Data != "expired" {
			t.Errorf("ended event = %q, want expired", ev.Data)
		}
		if !s.Ended() {
			t.Error("the stream stayed open after its session expired")
		}
	})
}

func changePassword(t *testing.T, a *testApp, other *http.Client) {
	t.Helper()
	r := a.post(other, "/password", url.Values{"current": {"old-password"}, "new": {"new-password"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("change password: %d", r.status)
	}
}

// A stream told that its user's credentials changed reads the generation
// from Redis, not from this process's cache: the cache's invalidation comes
// on another connection than the message and may come after it (a busy
// process, or the change made by another process). Here the invalidation is
// held back on its way, as it was when the stream outran it under load and
// stayed open until its next keep-alive.
func TestAStreamEndsWhenTheNewsOutrunsTheCache(t *testing.T) {
	rs := redistest.Start(t)
	held := holdableRedis(t, rs)
	a := newTestAppWith(t, rs, func(c *Config) { c.Instance = "a"; c.Redis.URL = held.URL() })
	b := newLiveApp(t, rs, "b")
	rdb := newRedisClient(t, rs)
	mine, other := browser(t, firefoxLinux), browser(t, chromeWin)
	a.register(mine, "nell", "old-password")
	b.login(other, "nell", "old-password")
	// Missing from the index: only the new generation can end it.
	token := a.token(mine)
	if err := rdb.Do(context.Background(), rdb.B().Hdel().Key(sessions.IndexKey("nell")).Field(sessions.ID(token)).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	s := apptest.OpenStream(t, mine, a.srv.URL+"/live")
	s.Next(views.SSEHello)
	if r := a.get(mine, "/profile"); r.status != http.StatusOK { // the generation is in a's cache now
		t.Fatalf("profile before the change: %d", r.status)
	}

	untilSubscribed(t, rs) // the message must find a's stream listening
	held.Hold()
	if r := b.post(other, "/sessions/revoke-others", nil); r.status != http.StatusSeeOther {
		t.Fatalf("log out everywhere else on b: %d", r.status)
	}
	// The message has reached a; a stream that asks Redis is let through at
	// once, one that trusts the cache is given the time it needs to.
	for deadline := time.Now().Add(10 * time.Second); !held.Asked(accounts.Key("nell")) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	held.Release()
	s.Next(views.SSEEnded)
	if !s.Ended() {
		t.Error("the stream stayed open after its ended event")
	}
}

// A session whose key was deleted or edited by hand, which no message
// announces, ends its stream at the next keep-alive: it showed the session
// live, its own row "open now", for as long as the page stayed open.
func TestAStreamEndsWhenItsKeyGoesByHand(t *testing.T) {
	rs := redistest.Start(t)
	a := newLiveApp(t, rs, "a", func(a *App) { a.liveKeepAlive = 100 * time.Millisecond })
	for _, edit := range [][]string{{"DEL"}, {"SET", "", "not json", "KEEPTTL"}} {
		t.Run(edit[0], func(t *testing.T) {
			c := browser(t, firefoxLinux)
			a.get(c, "/count")
			s := apptest.OpenStream(t, c, a.srv.URL+"/live")
			s.Next(views.SSEHello)
			args := []string{edit[0], sessions.Key(a.token(c))}
			rs.MustDo(append(args, edit[min(2, len(edit)):]...)...)
			s.Next(views.SSEEnded)
			if !s.Ended() {
				t.Error("the stream stayed open after its ended event")
			}
		})
	}
}

// A count edited down by hand and counted on reaches the session's open
// pages: the stream sent nothing below the highest count it had sent.
func TestAStreamShowsACountEditedDown(t *testing.T) {
	rs := redistest.Start(t)
	a := newLiveApp(t, rs, "a")
	c := browser(t, firefoxLinux)
	for range 5 {
		a.get(c, "/count")
	}
	s := apptest.OpenStream(t, c, a.srv.URL+"/live")
	s.Next(views.SSEHello)
	key := sessions.Key(a.token(c))
	rs.MustDo("SET", key, strings.Replace(rs.MustDo("GET", key), `"views":5`, `"views":0`, 1), "KEEPTTL")
	if r := a.get(c, "/count"); r.status != http.StatusOK || countShown(t, r.body) != "1" {
		t.Fatalf("the count after the edit: %d, want 200 counting 1", r.status)
	}
	if ev := s.Next(views.SSECount); ev.Data != "1" {
		t.Errorf("the stream's count = %q, want 1, as Redis and the page have it", ev.Data)
	}
}

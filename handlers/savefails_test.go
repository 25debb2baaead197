package handlers

import (
	"bytes"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// cutRedis is a TCP proxy in front of a real Redis that goes away for good
// the moment the app sends what cutAt matches: that command never reaches
// Redis, open connections drop and new ones are refused, as when Redis is
// killed between two commands of one request.
type cutRedis struct {
	ln    net.Listener
	cutAt func([]byte) bool
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func cuttableRedis(t *testing.T, rs *redistest.Server, cutAt func([]byte) bool) *cutRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutRedis{ln: ln, cutAt: cutAt}
	t.Cleanup(c.Cut)
	go func() {
		for {
			app, err := ln.Accept()
			if err != nil {
				return
			}
			redis, err := net.Dial("tcp", rs.Addr())
			if err != nil {
				app.Close()
				continue
			}
			c.mu.Lock()
			c.conns = append(c.conns, app, redis)
			c.mu.Unlock()
			go c.pipe(app, redis, true)
			go c.pipe(redis, app, false)
		}
	}()
	return c
}

func (c *cutRedis) URL() string { return "redis://" + c.ln.Addr().String() + "/0" }

func (c *cutRedis) pipe(from, to net.Conn, toRedis bool) {
	defer to.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if toRedis && c.cutAt(buf[:n]) {
				c.Cut()
				return
			}
			if _, err := to.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut drops every connection and refuses new ones.
func (c *cutRedis) Cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cut {
		return
	}
	c.cut = true
	c.ln.Close()
	for _, conn := range c.conns {
		conn.Close()
	}
}

// sessionCommit matches scs/redisstore's write of a session (MULTI, SET
// sess:…, PEXPIREAT, EXEC from the session pool).
func sessionCommit(p []byte) bool {
	return bytes.Contains(p, []byte("\r\nMULTI\r\n")) && bytes.Contains(p, []byte("\r\nSET\r\n")) &&
		bytes.Contains(p, []byte("\r\nsess:"))
}

// A sign-up, login, password change or "log out everywhere else" whose
// handler has done its work (the account created, the password changed, the
// browser's previous session taken for the renewal) and whose session
// then cannot be saved is answered with what happened, as when logging in
// fails partway: not "nothing was changed", and with no name in the header,
// since the browser is not logged in. (Seen in the chaos run: a kill -9 of
// Redis between the sign-up's scripts and the save answered "nothing was
// changed" under a header naming the user; the account existed and the old
// token was marked renewed.)
func TestASaveThatFailsAfterTheLoginSaysWhatHappened(t *testing.T) {
	for _, tc := range []struct {
		path, title string
	}{
		{"/register", "Account created, not logged in"},
		{"/login", "Not logged in"},
		{"/password", "Password changed, logged out"},
		{"/sessions/revoke-others", "Logged out everywhere"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rs := redistest.Start(t)
			var armed bool
			var mu sync.Mutex
			proxy := cuttableRedis(t, rs, func(p []byte) bool {
				mu.Lock()
				defer mu.Unlock()
				return armed && sessionCommit(p)
			})
			ta := newTestAppWith(t, rs, func(c *Config) { c.Redis = redisconn.Config{URL: proxy.URL()} })
			c := ta.client()
			form := url.Values{"username": {"cutuser"}, "password": {"cutuser-password"}}
			switch tc.path {
			case "/login":
				ta.register(ta.client(), "cutuser", "cutuser-password")
				ta.get(c, "/count") // an anonymous session, taken by the login's renewal
			case "/password", "/sessions/revoke-others":
				ta.register(c, "cutuser", "cutuser-password")
				form = url.Values{"current": {"cutuser-password"}, "new": {"cutuser-password-2"}}
			}
			mu.Lock()
			armed = true
			mu.Unlock()
			r := ta.post(c, tc.path, form)
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("POST %s with the save cut off: %d, want 503", tc.path, r.status)
			}
			if got := problemTitle(r.body); got != tc.title {
				t.Errorf("POST %s with the save cut off: title %q, want %q", tc.path, got, tc.title)
			}
			if strings.Contains(r.body, "nothing was changed") {
				t.Errorf("POST %s with the save cut off says nothing was changed", tc.path)
			}
			if strings.Contains(r.body, ">cutuser</small>") {
				t.Errorf("POST %s with the save cut off: the header names the user, who is not logged in", tc.path)
			}
			if rs.MustDo("EXISTS", "user:cutuser") != "1" {
				t.Fatal("the account is not in Redis")
			}
		})
	}
}

package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// A login form submitted twice (a double click) sends both requests with
// the same anonymous cookie, and the browser keeps the cookie of the answer
// that comes last. Whichever it is, the views counted before the login are
// in it.
func TestDoubleSubmittedLoginKeepsTheCount(t *testing.T) {
	for _, gap := range []time.Duration{100 * time.Millisecond, 0} {
		t.Run("second login "+gap.String()+" after the first", func(t *testing.T) {
			ta := newTestApp(t)
			ta.register(ta.client(), "kim", "kim-password")
			browser := ta.client()
			for range 10 {
				ta.get(browser, "/count")
			}
			anon := ta.token(browser)
			noJar := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			login := func() hit {
				return fetch(noJar, ta.srv.URL+"/login", url.Values{"username": {"kim"}, "password": {"kim-password"}},
					"Cookie", ta.app.Sessions.Cookie.Name+"="+anon)
			}
			first := make(chan hit, 1)
			go func() { first <- login() }()
			time.Sleep(gap)
			second := login()
			if h := <-first; h.status != http.StatusSeeOther {
				t.Fatalf("first login: %d %v", h.status, h.err)
			}
			if second.status != http.StatusSeeOther {
				t.Fatalf("second login: %d %v\n%s", second.status, second.err, second.body)
			}
			var kept string
			for _, c := range second.header.Values("Set-Cookie") {
				if v, ok := strings.CutPrefix(c, ta.app.Sessions.Cookie.Name+"="); ok {
					kept, _, _ = strings.Cut(v, ";")
				}
			}
			if kept == "" || kept == anon {
				t.Fatalf("second login set no new session cookie: %q", second.header.Values("Set-Cookie"))
			}
			h := fetch(noJar, ta.srv.URL+"/count", nil, "Cookie", ta.app.Sessions.Cookie.Name+"="+kept)
			if h.status != http.StatusOK || h.views() != 11 {
				t.Errorf("the cookie the browser keeps counts %d (status %d), want 11: the 10 views before login were lost", h.views(), h.status)
			}
		})
	}
}

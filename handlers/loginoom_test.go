package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// oomAfterAuth lets the password check pass, then puts Redis at its memory
// limit (noeviction), as when memory crosses maxmemory during a login:
// deleting still works (the renewal's GETDEL), adding data is refused (OOM).
type oomAfterAuth struct {
	accountStore
	rs    *redistest.Server
	armed *bool
}

func (s oomAfterAuth) Authenticate(ctx context.Context, name, password string) (accounts.Account, error) {
	acct, err := s.accountStore.Authenticate(ctx, name, password)
	if *s.armed {
		s.rs.MustDo("CONFIG", "SET", "maxmemory-policy", "noeviction")
		s.rs.MustDo("CONFIG", "SET", "maxmemory", "1")
	}
	return acct, err
}

// A login that Redis refuses with OOM after it took the browser's session
// to renew its token does not say nothing was changed; logging in again
// works and keeps the views counted before.
func TestLoginRefusedAfterRenewalDoesNotSayNothingChanged(t *testing.T) {
	rs := redistest.Start(t)
	armed := false
	ta := newTestAppOn(t, rs, func(a *App) { a.Accounts = oomAfterAuth{a.Accounts, rs, &armed} })
	c := ta.client()
	ta.register(c, "ida", "ida-password")
	ta.post(c, "/logout", nil)
	ta.get(c, "/count")
	ta.get(c, "/count")
	old := ta.token(c)

	armed = true
	r := ta.post(c, "/login", url.Values{"username": {"ida"}, "password": {"ida-password"}})
	armed = false
	rs.MustDo("CONFIG", "SET", "maxmemory", "0")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("login refused with OOM after the password check: %d, Retry-After %q; want 503 with Retry-After",
			r.status, r.header.Get("Retry-After"))
	}
	if rs.MustDo("EXISTS", "sess:"+old) != "0" {
		t.Fatal("the browser's session is still in Redis: the OOM did not come after the renewal, so this tests nothing")
	}
	if strings.Contains(r.body, "nothing was changed") || !strings.Contains(r.body, "not logged in") {
		t.Errorf("the page must say the login failed without claiming nothing was changed (the session was taken)\n%s", r.body)
	}
	if l := ta.post(c, "/login", url.Values{"username": {"ida"}, "password": {"ida-password"}}); l.status != http.StatusSeeOther {
		t.Fatalf("logging in again, as the page asks: %d", l.status)
	}
	if got := viewCount(t, ta.get(c, "/count").body); got != "3" {
		t.Errorf("count after logging in again: %s, want 3 (the two before the failed login kept)", got)
	}
}

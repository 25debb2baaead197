package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// Throttling counts only passwords that were checked and wrong: not the
// right ones, even several at once, and not attempts Redis kept from being
// checked.
func TestThrottleCountsOnlyCheckedFailures(t *testing.T) {
	p := throttle.DefaultPolicy

	t.Run("the right password submitted three times at once logs in each time, after failures", func(t *testing.T) {
		ta := newTestApp(t, behindProxy)
		ta.register(ta.client(), "ivy", "ivy-password")
		for range p.Pair.Max - 2 {
			wantStatus(t, "typo", ta.loginFrom("192.0.2.30", "ivy", "wrong-password"), http.StatusUnauthorized)
		}
		hits := make([]hit, 3)
		var wg sync.WaitGroup
		c := ta.client() // one browser, a triple click
		for i := range hits {
			wg.Go(func() {
				hits[i] = fetch(c, ta.srv.URL+"/login", url.Values{"username": {"ivy"}, "password": {"ivy-password"}},
					"X-Forwarded-For", "192.0.2.30")
			})
		}
		wg.Wait()
		for i, h := range hits {
			if h.err != nil || h.status != http.StatusSeeOther {
				t.Errorf("login %d: status %d, err %v, want 303\n%s", i, h.status, h.err, h.body)
			}
		}
	})

	t.Run("logins answered 503 before their password was checked are not counted", func(t *testing.T) {
		store := &accountsDown{}
		ta := newTestApp(t, behindProxy, func(a *App) { store.accountStore = a.Accounts; a.Accounts = store })
		ta.register(ta.client(), "hank", "hank-password")
		store.down.Store(true)
		for i := range 2 * p.Pair.Max {
			wantStatus(t, "login #"+strconv.Itoa(i+1)+" while the account cannot be read",
				ta.loginFrom("192.0.2.31", "hank", "wrong-password"), http.StatusServiceUnavailable)
		}
		store.down.Store(false)
		wantStatus(t, "the right password once Redis is back", ta.loginFrom("192.0.2.31", "hank", "hank-password"), http.StatusSeeOther)
	})
}

// accountsDown fails every password check, while down, the way a Redis
// that does not answer in time fails the account read: the password is
// never compared.
type accountsDown struct {
	accountStore
	down atomic.Bool
}

func (s *accountsDown) Authenticate(ctx context.Context, name, password string) (accounts.Account, error) {
	if s.down.Load() {
		return accounts.Account{}, fmt.Errorf("accounts: get %q: %w", name, context.DeadlineExceeded)
	}
	return s.accountStore.Authenticate(ctx, name, password)
}

// The current password a password change asks for is throttled like a
// login: per session and per account, with 429 and Retry-After, and a
// blocked check changes nothing even with the right password.
func TestPasswordChangeIsThrottled(t *testing.T) {
	p := throttle.DefaultPolicy
	ta := newTestApp(t)
	thief := ta.client()
	ta.register(thief, "jack", "jack-password")
	change := func(c *http.Client, current string, headers ...string) response {
		t.Helper()
		return ta.post(c, "/password", url.Values{"current": {current}, "new": {"stolen-password"}}, headers...)
	}
	for i := range p.Pair.Max {
		wantStatus(t, "guess #"+strconv.Itoa(i+1), change(thief, "guess-"+strconv.Itoa(i)), http.StatusUnprocessableEntity)
	}
	for _, tc := range []struct {
		name    string
		current string
		headers []string
	}{
		{"one more guess", "guess-x", nil},
		{"the right password", "jack-password", nil},
		{"htmx", "jack-password", []string{"HX-Request", "true"}},
	} {
		t.Run("past the limit, "+tc.name+": 429 with Retry-After", func(t *testing.T) {
			r := change(thief, tc.current, tc.headers...)
			wantStatus(t, tc.name, r, http.StatusTooManyRequests)
			if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 || secs > int(p.Pair.Window.Seconds()) {
				t.Errorf("Retry-After %q, want 1..%d", r.header.Get("Retry-After"), int(p.Pair.Window.Seconds()))
			}
			if !strings.Contains(r.body, "Too many wrong current passwords") || !strings.Contains(r.body, `data-testid="password-form"`) {
				t.Errorf("no clear message on the password form\n%s", r.body)
			}
		})
	}
	t.Run("the password is unchanged", func(t *testing.T) {
		wantStatus(t, "old password", ta.loginFrom("192.0.2.50", "jack", "jack-password"), http.StatusSeeOther)
	})
	t.Run("the owner's other session may still change it", func(t *testing.T) {
		owner := ta.client()
		if r := ta.post(owner, "/login", url.Values{"username": {"jack"}, "password": {"jack-password"}}); r.status != http.StatusSeeOther {
			t.Fatalf("login: %d", r.status)
		}
		wantStatus(t, "change", ta.post(owner, "/password", url.Values{"current": {"jack-password"}, "new": {"owner-password"}}), http.StatusSeeOther)
	})
}

package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessionindex"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/sessionstack"
)

// failingIndex is the real session index with one command failing on
// demand, as when Redis drops a connection between two commands.
type failingIndex struct {
	sessionstack.Index
	failAdd, failRevokeOthers bool
}

func (f *failingIndex) Add(ctx context.Context, user string, e sessionindex.Entry, oldID string, deadline time.Time) error {
	if f.failAdd {
		return syscall.ECONNRESET
	}
	return f.Index.Add(ctx, user, e, oldID, deadline)
}

func (f *failingIndex) RevokeOthers(ctx context.Context, user, keepID string) (sessionindex.Revoked, error) {
	if f.failRevokeOthers {
		return sessionindex.Revoked{}, errors.New("index script failed")
	}
	return f.Index.RevokeOthers(ctx, user, keepID)
}

func newFailingIndexApp(t *testing.T) (*testApp, *failingIndex) {
	rs := redistest.Start(t)
	ta := wireTestApp(t, rs, testConfig(rs, sessionstack.Redis))
	fi := &failingIndex{Index: ta.app.Index}
	ta.app.Index = fi
	return ta.serve(), fi
}

// A login that fails after the token was renewed leaves the browser logged
// out (a session missing from the user's index could never be revoked), and
// keeps its count.
func TestLoginFailingPartwayLeavesTheBrowserLoggedOutWithItsCount(t *testing.T) {
	ta, fi := newFailingIndexApp(t)
	c := ta.client()
	ta.register(c, "gus", "gus-password")
	ta.post(c, "/logout", nil)
	ta.get(c, "/count")
	ta.get(c, "/count")

	fi.failAdd = true
	r := ta.post(c, "/login", url.Values{"username": {"gus"}, "password": {"gus-password"}})
	fi.failAdd = false
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("login with the index failing: %d, want 503", r.status)
	}
	if p := ta.get(c, "/profile"); p.status != http.StatusUnauthorized || !strings.Contains(p.body, `data-testid="login-prompt"`) {
		t.Errorf("GET /profile after a failed login: %d, want 401 with the login prompt", p.status)
	}
	if got := viewCount(t, ta.get(c, "/count").body); got != "3" {
		t.Errorf("count after the failed login: %s, want 3 (the two before it kept)", got)
	}
	if r := ta.post(c, "/login", url.Values{"username": {"gus"}, "password": {"gus-password"}}); r.status != http.StatusSeeOther {
		t.Errorf("login once the index works: %d", r.status)
	}
}

// A sign-up that created the account but could not log in says so, instead
// of "nothing was changed".
func TestRegisterFailingPartwaySaysTheAccountExists(t *testing.T) {
	ta, fi := newFailingIndexApp(t)
	c := ta.client()
	fi.failAdd = true
	r := ta.post(c, "/register", url.Values{"username": {"ida"}, "password": {"ida-password"}})
	fi.failAdd = false
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "account was created") {
		t.Errorf("register with the index failing: %d, want 503 saying the account was created\n%s", r.status, r.body)
	}
	if strings.Contains(r.body, "nothing was changed") {
		t.Errorf("the page says nothing was changed, but the account exists")
	}
	if r := ta.post(c, "/login", url.Values{"username": {"ida"}, "password": {"ida-password"}}); r.status != http.StatusSeeOther {
		t.Errorf("login to the account the failed sign-up created: %d", r.status)
	}
}

// A password change that stored the new password but could not end the
// other sessions says so, and logs this browser out too.
func TestPasswordChangeFailingPartwaySaysWhatHappened(t *testing.T) {
	ta, fi := newFailingIndexApp(t)
	c := ta.client()
	ta.register(c, "gus", "gus-password")

	fi.failRevokeOthers = true
	r := ta.post(c, "/password", url.Values{"current": {"gus-password"}, "new": {"brand-new-password"}})
	fi.failRevokeOthers = false
	if r.status != http.StatusInternalServerError || !strings.Contains(r.body, "new password is saved") {
		t.Errorf("password change with revoking failing: %d, want 500 saying the password is saved\n%s", r.status, r.body)
	}
	if p := ta.get(c, "/profile"); p.status != http.StatusUnauthorized || !strings.Contains(p.body, `data-testid="login-prompt"`) {
		t.Errorf("GET /profile after the failed change: %d, want 401 with the login prompt (logged out)", p.status)
	}
	fresh := ta.client()
	if l := ta.post(fresh, "/login", url.Values{"username": {"gus"}, "password": {"brand-new-password"}}); l.status != http.StatusSeeOther {
		t.Errorf("login with the new password: %d", l.status)
	}
}

// A password change or "log out everywhere else" that renewed this browser's
// token and then could not list the session (Redis failed between the two)
// changed no credentials, but the browser is logged out: a session its user's
// list does not hold could never be revoked. The page says both, never that
// nothing was changed.
func TestACredentialChangeFailingAfterTheRenewalSaysTheBrowserIsLoggedOut(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		form       url.Values
	}{
		{"password change", "/password", url.Values{"current": {"gus-password"}, "new": {"brand-new-password"}}},
		{"log out everywhere else", "/sessions/revoke-others", url.Values{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta, fi := newFailingIndexApp(t)
			c := ta.client()
			ta.register(c, "gus", "gus-password")
			other := ta.client()
			ta.post(other, "/login", url.Values{"username": {"gus"}, "password": {"gus-password"}})

			fi.failAdd = true
			r := ta.post(c, tc.path, tc.form)
			fi.failAdd = false
			if r.status != http.StatusServiceUnavailable || strings.Contains(r.body, "nothing was changed") ||
				!strings.Contains(r.body, "logged out") {
				t.Errorf("%s failing after the renewal: %d, want 503 saying this browser is logged out, not that nothing was changed\n%s",
					tc.name, r.status, r.body)
			}
			// 409 for a few seconds (its old token was renewed), then 401.
			if p := ta.get(c, "/profile"); p.status == http.StatusOK {
				t.Errorf("GET /profile after it: %d, want it logged out, as the page said", p.status)
			}
			if p := ta.get(other, "/profile"); p.status != http.StatusOK {
				t.Errorf("the other browser's GET /profile: %d, want 200 (no credentials changed)", p.status)
			}
			if l := ta.post(ta.client(), "/login", url.Values{"username": {"gus"}, "password": {"gus-password"}}); l.status != http.StatusSeeOther {
				t.Errorf("login with the old password: %d, want 303 (the password was not changed)", l.status)
			}
		})
	}
}

// fullAtChange is the real account store with Redis full (maxmemory) from
// the moment the account is to change; every write after it is refused, the
// renewed session's save included. refused: the change is refused too, as
// Redis refuses it (OOM), where the store's own write may still get through.
type fullAtChange struct {
	accountStore
	rs      *redistest.Server
	refused bool
}

func (f fullAtChange) fill(ctx context.Context) error {
	f.rs.MustDo("CONFIG", "SET", "maxmemory", "1")
	if !f.refused {
		return nil
	}
	_, err := f.rs.Do("SET", "a-write", "refused")
	if err == nil {
		return errors.New("Redis took a write at maxmemory 1")
	}
	return err
}

func (f fullAtChange) SetPassword(ctx context.Context, username string, password accounts.NewPassword) (string, error) {
	if err := f.fill(ctx); err != nil {
		return "", err
	}
	return f.accountStore.SetPassword(ctx, username, password)
}

func (f fullAtChange) NewGeneration(ctx context.Context, username string) (string, error) {
	if err := f.fill(ctx); err != nil {
		return "", err
	}
	return f.accountStore.NewGeneration(ctx, username)
}

// A credential change after which Redis is full (OOM) has its renewed
// session's save refused, its old token taken by the renewal: this browser
// is logged out, and the page says so and whether the credentials changed,
// never that nothing was changed.
func TestACredentialChangeWhenRedisFillsSaysTheBrowserIsLoggedOut(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		form       url.Values
		refused    bool
	}{
		{"password change refused", "/password", url.Values{"current": {"gus-password"}, "new": {"brand-new-password"}}, true},
		{"password change", "/password", url.Values{"current": {"gus-password"}, "new": {"brand-new-password"}}, false},
		{"log out everywhere else refused", "/sessions/revoke-others", url.Values{}, true},
		{"log out everywhere else", "/sessions/revoke-others", url.Values{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := redistest.Start(t)
			ta := wireTestApp(t, rs, testConfig(rs, sessionstack.Redis))
			ta.app.Accounts = fullAtChange{ta.app.Accounts, rs, tc.refused}
			ta.serve()
			c := ta.client()
			ta.register(c, "gus", "gus-password")
			old := ta.token(c)

			r := ta.post(c, tc.path, tc.form)
			rs.MustDo("CONFIG", "SET", "maxmemory", "0")
			if n, _ := rs.Do("EXISTS", "sess:"+old); n != "0" {
				t.Fatalf("the old key is still there: the renewal did not take it")
			}
			text := pageText(r.body)
			if r.status != http.StatusServiceUnavailable || strings.Contains(text, "nothing was changed") || !strings.Contains(text, "logged out") {
				t.Errorf("%s: %d %q, want 503 saying this browser is logged out, not that nothing was changed", tc.name, r.status, text)
			}
			if p := ta.get(c, "/profile"); p.status == http.StatusOK {
				t.Errorf("GET /profile after it: 200, want it logged out, as the page said")
			}
			password := "gus-password"
			if strings.Contains(text, "Password changed") {
				password = "brand-new-password"
			}
			if l := ta.post(ta.client(), "/login", url.Values{"username": {"gus"}, "password": {password}}); l.status != http.StatusSeeOther {
				t.Errorf("the page said %q, but a login with %s answers %d", text, password, l.status)
			}
		})
	}
}

// pageText is a page's <main> as text, for a failure's message.
func pageText(body string) string {
	if i := strings.Index(body, "<main"); i >= 0 {
		body = body[i:]
	}
	var b strings.Builder
	in := false
	for _, r := range body {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
			b.WriteByte(' ')
		case !in:
			b.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// changedThen is the real account store that runs then once, right after a
// credential change is stored: another session's request at that moment.
type changedThen struct {
	accountStore
	then *func()
}

func (c changedThen) after() {
	if f := *c.then; f != nil {
		*c.then = nil
		f()
	}
}

func (c changedThen) SetPassword(ctx context.Context, username string, p accounts.NewPassword) (string, error) {
	gen, err := c.accountStore.SetPassword(ctx, username, p)
	c.after()
	return gen, err
}

func (c changedThen) NewGeneration(ctx context.Context, username string) (string, error) {
	gen, err := c.accountStore.NewGeneration(ctx, username)
	c.after()
	return gen, err
}

// A password change or "log out everywhere else" whose change is stored, and
// whose session another session's "log out everywhere else" ends before it is
// kept, says what it changed: the generic "that ended this one as it
// started" read as if the password change had not happened.
func TestACredentialChangeEndedByAnotherAtTheSameMomentSaysWhatItChanged(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		form       url.Values
		want       string
	}{
		{"password change", "/password", url.Values{"current": {"gus-password"}, "new": {"brand-new-password"}}, "new password was saved"},
		{"log out everywhere else", "/sessions/revoke-others", url.Values{}, "other sessions were logged out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var then func()
			rs := redistest.Start(t)
			ta := wireTestApp(t, rs, testConfig(rs, sessionstack.Redis))
			ta.app.Accounts = changedThen{ta.app.Accounts, &then}
			ta.serve()
			mine, other := ta.client(), ta.client()
			ta.register(mine, "gus", "gus-password")
			ta.login(other, "gus", "gus-password")
			// The other session's "log out everywhere else", which passed its
			// checks before this change, ends this session's new entry.
			then = func() {
				if _, err := ta.app.Index.RevokeOthers(context.Background(), "gus", sessions.ID(ta.token(other))); err != nil {
					t.Errorf("the other session's revoke: %v", err)
				}
			}
			r := ta.post(mine, tc.path, tc.form)
			text := pageText(r.body)
			if r.status != http.StatusConflict || !strings.Contains(text, tc.want) {
				t.Errorf("%s: %d %q, want 409 saying %q", tc.name, r.status, text, tc.want)
			}
			if tc.path == "/password" {
				if l := ta.post(ta.client(), "/login", url.Values{"username": {"gus"}, "password": {"brand-new-password"}}); l.status != http.StatusSeeOther {
					t.Errorf("a login with the new password: %d, want 303 (the page says it was saved)", l.status)
				}
			}
		})
	}
}

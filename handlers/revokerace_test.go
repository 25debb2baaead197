package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/sessionindex"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/sessionstack"
)

// noRedirects sends a request with the cookie a test gives it and shows the
// answer as it is: no jar, and a 303 not followed.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// renewingForm is a form that renews the session it is sent with.
type renewingForm struct {
	name, path string
	form       url.Values
}

// endingForms are the forms that also end the user's other sessions (for
// a user whose password is kim-password), each with a form of its own.
func endingForms() []renewingForm {
	return []renewingForm{
		{"log out everywhere else", "/sessions/revoke-others", url.Values{}},
		{"change the password", "/password", url.Values{"current": {"kim-password"}, "new": {"kim-new-password"}}},
	}
}

// Two browsers of one user that "log out everywhere else" at the same
// moment each end the other, and each renews its own token as it does: a
// renewed session whose entry the other's revoke removed before its key was
// written must not stay live off the list. Whatever the interleaving, every
// live session of the user is on the sessions page, and every answer is a
// 303 (this browser kept), a 401 (the other's revoke came first: this one
// was already out) or a 409 that says why this browser was not kept. No
// answer but a 303 sets a session cookie (a 401 may clear it).
func TestTwoLogOutsEverywhereElseAtOnceLeaveNoUnlistedSession(t *testing.T) {
	ta := newTestApp(t)
	statuses := map[int]int{}
	for trial := range 30 {
		laptop, phone := ta.client(), ta.client()
		user := "kim" + string(rune('a'+trial%26)) + strings.Repeat("x", trial/26)
		ta.register(laptop, user, "kim-password")
		ta.login(phone, user, "kim-password")

		var wg sync.WaitGroup
		answers := make([]response, 2)
		for i, c := range []*http.Client{laptop, phone} {
			wg.Go(func() { answers[i] = ta.post(c, "/sessions/revoke-others", nil) })
		}
		wg.Wait()
		for i, r := range answers {
			statuses[r.status]++
			kept := r.status == http.StatusSeeOther
			out := r.status == http.StatusUnauthorized || r.status == http.StatusConflict && strings.Contains(r.body, "at the same moment")
			// A 401 may clear the cookie of the session that ended (the
			// other's new generation ended it as this request loaded it).
			setsToken := false
			for _, c := range r.header.Values("Set-Cookie") {
				v, ok := strings.CutPrefix(c, ta.app.Sessions.Cookie.Name+"=")
				setsToken = setsToken || ok && !strings.HasPrefix(v, ";")
			}
			if !kept && !out || out && setsToken {
				t.Fatalf("trial %d: browser %d's revoke-others answered %d (Set-Cookie %q):\n%s", trial, i, r.status, r.header.Get("Set-Cookie"), r.body)
			}
		}

		listed := ta.redis.MustDo("HKEYS", sessions.IndexKey(user))
		for _, key := range strings.Fields(ta.redis.MustDo("KEYS", sessions.Prefix+"*")) {
			if !strings.Contains(ta.redis.MustDo("GET", key), `"username":"`+user+`"`) {
				continue
			}
			if id := sessions.ID(strings.TrimPrefix(key, sessions.Prefix)); !slices.Contains(strings.Fields(listed), id) {
				t.Errorf("trial %d: %s… is live, with no entry on %s's sessions page (listed: %q)", trial, key[:11], user, listed)
			}
		}
	}
	t.Logf("answers: %v", statuses)
}

// The same form sent twice at once (a double click without JavaScript; htmx
// drops the second) carries one cookie: one copy takes the session's token
// and does the change; the other changes nothing and sets no cookie: a 409
// that says so (never "Please log in": the browser is logged in under the
// first copy's cookie), or the password form's 422 when it checked the
// password after the first copy changed it. So the browser stays logged in
// whichever answer comes last, and its session is listed.
func TestAFormThatEndsOtherSessionsSentTwiceKeepsThisBrowser(t *testing.T) {
	ta := newTestApp(t)
	for _, tc := range endingForms() {
		t.Run(tc.name, func(t *testing.T) {
			for trial := range 15 {
				laptop, phone := ta.client(), ta.client()
				user := fmt.Sprintf("kim-%d-%s", trial, strings.ReplaceAll(tc.name, " ", "-"))
				ta.register(laptop, user, "kim-password")
				ta.login(phone, user, "kim-password")
				cookie := ta.app.Sessions.Cookie.Name + "=" + ta.token(laptop)

				var wg sync.WaitGroup
				answers := make([]hit, 2)
				for i := range answers {
					wg.Go(func() { answers[i] = fetch(noRedirects, ta.srv.URL+tc.path, tc.form, "Cookie", cookie) })
				}
				wg.Wait()
				done, refused := 0, 0
				for _, h := range answers {
					switch {
					case h.status == http.StatusSeeOther:
						done++
					case !h.setCookie && (h.status == http.StatusConflict && strings.Contains(h.body, "sent this form twice") ||
						h.status == http.StatusUnprocessableEntity && strings.Contains(h.body, "not your current password")):
						refused++
					default:
						t.Fatalf("trial %d: an answer was %d (set a cookie: %v):\n%s", trial, h.status, h.setCookie, h.body)
					}
				}
				if done != 1 || refused != 1 {
					t.Fatalf("trial %d: %d changes and %d refusals, want one of each", trial, done, refused)
				}
				for _, h := range answers {
					if !h.setCookie {
						continue
					}
					kept := ""
					for _, c := range h.header.Values("Set-Cookie") {
						if v, ok := strings.CutPrefix(c, ta.app.Sessions.Cookie.Name+"="); ok {
							kept, _, _ = strings.Cut(v, ";")
						}
					}
					if p := fetch(noRedirects, ta.srv.URL+"/profile", nil, "Cookie", ta.app.Sessions.Cookie.Name+"="+kept); p.status != http.StatusOK {
						t.Errorf("trial %d: the browser's new cookie opens /profile with %d, want 200", trial, p.status)
					}
					if listed := ta.redis.MustDo("HKEYS", sessions.IndexKey(user)); listed != sessions.ID(kept) {
						t.Errorf("trial %d: %s's sessions page lists %q, want only this browser's %q", trial, user, listed, sessions.ID(kept))
					}
				}
				if p := ta.get(phone, "/profile"); p.status != http.StatusUnauthorized {
					t.Errorf("trial %d: the other browser opens /profile with %d, want 401", trial, p.status)
				}
			}
		})
	}
}

// A lab switch renews the session too: sent twice with one cookie, one copy
// renews it and the other changes nothing (a 409 with no cookie), so the
// browser keeps a live session whichever answer comes last.
func TestALabSwitchSentTwiceRenewsOnce(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	name := ta.app.Sessions.Cookie.Name
	for trial := range 15 {
		c := ta.client()
		ta.anonymousSession(c)
		cookie := name + "=" + ta.token(c)
		var wg sync.WaitGroup
		answers := make([]hit, 2)
		for i := range answers {
			wg.Go(func() {
				answers[i] = fetch(noRedirects, ta.srv.URL+"/lab/switch/renewal", url.Values{"on": {"0"}}, "Cookie", cookie)
			})
		}
		wg.Wait()
		renewed, refused := "", 0
		for _, h := range answers {
			switch {
			case h.status == http.StatusSeeOther && h.setCookie:
				for _, line := range h.header.Values("Set-Cookie") {
					if v, ok := strings.CutPrefix(line, name+"="); ok {
						renewed, _, _ = strings.Cut(v, ";")
					}
				}
			case h.status == http.StatusConflict && !h.setCookie && strings.Contains(h.body, "sent this form twice"):
				refused++
			default:
				t.Fatalf("trial %d: an answer was %d (set a cookie: %v):\n%s", trial, h.status, h.setCookie, h.body)
			}
		}
		if renewed == "" || refused != 1 {
			t.Fatalf("trial %d: answers %d and %d, want one renewal and one 409", trial, answers[0].status, answers[1].status)
		}
		if h := fetch(noRedirects, ta.srv.URL+"/count", nil, "Cookie", name+"="+renewed); h.status != http.StatusOK || h.setCookie {
			t.Errorf("trial %d: the renewed cookie counts with %d (new cookie: %v), want 200 on the same session", trial, h.status, h.setCookie)
		}
	}
}

// A browser whose session another browser ended (a revoke on the sessions
// page) while its own "log out everywhere else" or password change was on
// its way was not renewed and did not send the form twice: it is told that
// its session ended (401), changes nothing, and is not told to reload, which
// would only show the login page. A browser of that session counting just
// then starts a new anonymous count, not a "session renewed" refusal.
func TestAFormOnASessionEndedMeanwhileSaysSessionEnded(t *testing.T) {
	var ta *testApp
	var user string
	ta = newTestApp(t, func(a *App) {
		a.Ops = takenAfter{Operations: a.Ops, meanwhile: func(token string) {
			if _, err := a.Index.Revoke(context.Background(), user, sessions.ID(token)); err != nil {
				t.Error(err)
			}
		}}
	})
	for _, tc := range []struct {
		name, user, path string
		form             url.Values
	}{
		{"log out everywhere else", "kim-ended-1", "/sessions/revoke-others", url.Values{}},
		{"change the password", "kim-ended-2", "/password", url.Values{"current": {"kim-password"}, "new": {"kim-new-password"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			laptop, phone := ta.client(), ta.client()
			user = tc.user
			ta.register(laptop, user, "kim-password")
			ta.login(phone, user, "kim-password")
			gen := ta.redis.MustDo("GET", "user:"+user)
			cookie := ta.app.Sessions.Cookie.Name + "=" + ta.token(laptop)

			ta.app.tallies.backdate("request on a session ended meanwhile", perMinuteEvery) // a line a minute: this one's
			h := fetch(noRedirects, ta.srv.URL+tc.path, tc.form, "Cookie", cookie)
			if h.status != http.StatusUnauthorized || !strings.Contains(h.body, "Session ended") || h.setCookie {
				t.Errorf("answered %d (set a cookie: %v), want 401 “Session ended” and no cookie:\n%s", h.status, h.setCookie, h.body)
			}
			if !logged(ta.logs.String(), "request on a session ended meanwhile", "last_method=POST", "last_route="+tc.path) {
				t.Errorf("no line \"request on a session ended meanwhile\" with last_method=POST last_route=%s:\n%s", tc.path, ta.logs.String())
			}
			if now := ta.redis.MustDo("GET", "user:"+user); now != gen {
				t.Errorf("the account changed:\nbefore %s\nafter  %s", gen, now)
			}
			if c := fetch(noRedirects, ta.srv.URL+"/count", nil, "Cookie", cookie); c.status != http.StatusOK || !c.setCookie {
				t.Errorf("counting with the ended session's cookie answered %d (set a cookie: %v), want 200 and a new session:\n%s", c.status, c.setCookie, c.body)
			}
			if p := ta.get(phone, "/profile"); p.status != http.StatusOK {
				t.Errorf("the other browser, untouched, opens /profile with %d", p.status)
			}
		})
	}
}

// changedFirst is the session index with another browser's "log out
// everywhere else" landing after this request's own reading or change of
// the account and before its save: a login's entry going in (Add), or a
// renewing form's last index call, the revoke of the other sessions
// (RevokeOthers). The account gets a credential generation this request's
// session does not hold, and that revoke, already done, did not see it.
type changedFirst struct {
	sessionstack.Index
	change func(user, at string)
}

func (x changedFirst) Add(ctx context.Context, user string, e sessionindex.Entry, oldID string, deadline time.Time) error {
	x.change(user, "Add")
	return x.Index.Add(ctx, user, e, oldID, deadline)
}

func (x changedFirst) RevokeOthers(ctx context.Context, user, keepID string) (sessionindex.Revoked, error) {
	x.change(user, "RevokeOthers")
	return x.Index.RevokeOthers(ctx, user, keepID)
}

// A session saved with a credential generation the account no longer has
// is over before its cookie is set: its next request logs it out. So a
// login, or a "log out everywhere else" or password change, that another
// browser's "log out everywhere else" overtook as it saved does not answer
// as if it had worked (a 303 to a page that then says "Please log in"): it
// answers 409, that the other's change ended it as it started, sets no
// cookie, and leaves no key of that generation in Redis.
func TestARenewalOvertakenByANewGenerationIsNotKept(t *testing.T) {
	var overtakeAt atomic.Value // the index call the next change lands in
	overtakeAt.Store("")
	ta := newTestApp(t, func(a *App) {
		a.Index = changedFirst{Index: a.Index, change: func(user, at string) {
			if overtakeAt.CompareAndSwap(at, "") {
				if _, err := a.Accounts.NewGeneration(context.Background(), user); err != nil {
					t.Error(err)
				}
			}
		}}
	})
	for i, tc := range []struct {
		name, path string
		form       url.Values
		at         string // where the other's change lands
	}{
		{"log in", "/login", url.Values{"password": {"kim-password"}}, "Add"},
		{"log out everywhere else", "/sessions/revoke-others", url.Values{}, "RevokeOthers"},
		{"change the password", "/password", url.Values{"current": {"kim-password"}, "new": {"kim-new-password"}}, "RevokeOthers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			browser := ta.client()
			user := fmt.Sprintf("kim-overtaken-%d", i)
			ta.register(browser, user, "kim-password")
			cookie := ta.app.Sessions.Cookie.Name + "=" + ta.token(browser)
			form := tc.form
			if tc.path == "/login" {
				form.Set("username", user)
				cookie = ""
			}
			overtakeAt.Store(tc.at)
			h := fetch(noRedirects, ta.srv.URL+tc.path, form, "Cookie", cookie)
			if h.status != http.StatusConflict || !strings.Contains(h.body, "at the same moment") || h.setCookie {
				t.Errorf("answered %d (set a cookie: %v), want 409 “at the same moment” and no cookie:\n%s", h.status, h.setCookie, h.body)
			}
			gen := ta.redis.MustDo("GET", "user:"+user)
			for _, key := range strings.Fields(ta.redis.MustDo("KEYS", sessions.Prefix+"*")) {
				if v := ta.redis.MustDo("GET", key); strings.Contains(v, `"username":"`+user+`"`) && key != sessions.Prefix+ta.token(browser) {
					t.Errorf("%s… is in Redis, of a generation the account (%s) no longer has:\n%s", key[:11], gen, v)
				}
			}
		})
	}
}

// failingChange is the account store with the next credential change
// failing (a Redis timeout, an account deleted meanwhile).
type failingChange struct {
	accountStore
	fail *atomic.Bool
}

func (s failingChange) NewGeneration(ctx context.Context, username string) (string, error) {
	if s.fail.CompareAndSwap(true, false) {
		return "", errors.New("injected: the change failed")
	}
	return s.accountStore.NewGeneration(ctx, username)
}

func (s failingChange) SetPassword(ctx context.Context, username string, password accounts.NewPassword) (string, error) {
	if s.fail.CompareAndSwap(true, false) {
		return "", errors.New("injected: the change failed")
	}
	return s.accountStore.SetPassword(ctx, username, password)
}

// A "log out everywhere else" or password change whose change of the account
// fails after the session got its new token changes nothing, and leaves no
// session off its user's list: the browser keeps a listed session that
// opens /profile, or none (no cookie naming an unlisted one).
func TestAFailedChangeAfterTheRenewalLeavesNoUnlistedSession(t *testing.T) {
	var fail atomic.Bool
	ta := newTestApp(t, func(a *App) { a.Accounts = failingChange{accountStore: a.Accounts, fail: &fail} })
	name := ta.app.Sessions.Cookie.Name
	for i, tc := range endingForms() {
		t.Run(tc.name, func(t *testing.T) {
			laptop := ta.client()
			user := fmt.Sprintf("kim-failed-%d", i)
			ta.register(laptop, user, "kim-password")
			fail.Store(true)
			h := fetch(noRedirects, ta.srv.URL+tc.path, tc.form, "Cookie", name+"="+ta.token(laptop))
			if h.status < 500 {
				t.Fatalf("answered %d, want the failure", h.status)
			}
			listed := strings.Fields(ta.redis.MustDo("HKEYS", sessions.IndexKey(user)))
			for _, key := range strings.Fields(ta.redis.MustDo("KEYS", sessions.Prefix+"*")) {
				if !strings.Contains(ta.redis.MustDo("GET", key), `"username":"`+user+`"`) {
					continue
				}
				if id := sessions.ID(strings.TrimPrefix(key, sessions.Prefix)); !slices.Contains(listed, id) {
					t.Errorf("%s… is live, with no entry on %s's sessions page (listed: %q)", key[:11], user, listed)
				}
			}
			for _, c := range h.header.Values("Set-Cookie") {
				v, ok := strings.CutPrefix(c, name+"=")
				if token, _, _ := strings.Cut(v, ";"); ok && token != "" {
					if p := fetch(noRedirects, ta.srv.URL+"/profile", nil, "Cookie", name+"="+token); p.status != http.StatusOK {
						t.Errorf("the failure set a cookie that opens /profile with %d", p.status)
					}
				}
			}
		})
	}
}

// revokedBeforeEntry is the session index with a revoke of the session by
// id (from another browser's sessions page) landing after this request took
// its old key and before its new entry goes in: the revoke finds the old
// entry, and the key it deletes is already gone.
type revokedBeforeEntry struct {
	sessionstack.Index
	armed *atomic.Bool
}

func (x revokedBeforeEntry) Add(ctx context.Context, user string, e sessionindex.Entry, oldID string, deadline time.Time) error {
	if oldID != "" && x.armed.CompareAndSwap(true, false) {
		if _, err := x.Index.Revoke(ctx, user, oldID); err != nil {
			return err
		}
	}
	return x.Index.Add(ctx, user, e, oldID, deadline)
}

// A revoke answered "done" ends the session, even when it lands while the
// session renews itself (a lab switch, "log out everywhere else" or a
// password change under way): the renewal does not carry it on under a new
// token. The renewing request is told its session ended (401), sets no
// cookie, changes nothing, and no key of that user is left in Redis.
func TestARevokeDuringARenewalEndsTheSession(t *testing.T) {
	var armed atomic.Bool
	ta := newTestApp(t, func(a *App) {
		a.Lab = true
		a.Index = revokedBeforeEntry{Index: a.Index, armed: &armed}
	})
	for i, tc := range append([]renewingForm{{"a lab switch", "/lab/switch/renewal", url.Values{"on": {"0"}}}}, endingForms()...) {
		t.Run(tc.name, func(t *testing.T) {
			browser := ta.client()
			user := fmt.Sprintf("kim-revoked-%d", i)
			ta.register(browser, user, "kim-password")
			account := ta.redis.MustDo("GET", "user:"+user)
			armed.Store(true)
			h := fetch(noRedirects, ta.srv.URL+tc.path, tc.form, "Cookie", ta.app.Sessions.Cookie.Name+"="+ta.token(browser))
			if h.status != http.StatusUnauthorized || !strings.Contains(h.body, "Session ended") || h.setCookie {
				t.Errorf("answered %d (set a cookie: %v), want 401 “Session ended” and no cookie:\n%s", h.status, h.setCookie, h.body)
			}
			if now := ta.redis.MustDo("GET", "user:"+user); now != account {
				t.Errorf("the account changed:\nbefore %s\nafter  %s", account, now)
			}
			for _, key := range strings.Fields(ta.redis.MustDo("KEYS", sessions.Prefix+"*")) {
				if strings.Contains(ta.redis.MustDo("GET", key), `"username":"`+user+`"`) {
					t.Errorf("%s… of the revoked session's user is still in Redis", key[:11])
				}
			}
			if listed := ta.redis.MustDo("HKEYS", sessions.IndexKey(user)); listed != "" {
				t.Errorf("%s's sessions page still lists %q", user, listed)
			}
		})
	}
}

// The second copy of a form that renews the session can arrive after the
// first has finished: its cookie names a session renewed a moment ago, and
// the answer says so (409, no cookie), not "Please log in", which would be
// untrue of a browser logged in under the first copy's cookie.
func TestASecondCopyAfterTheFirstFinishedSaysRenewed(t *testing.T) {
	ta := newTestApp(t)
	for _, tc := range append(endingForms(), renewingForm{"the profile page, loaded with the old cookie", "/profile", nil}) {
		t.Run(tc.name, func(t *testing.T) {
			c := ta.client()
			ta.register(c, "kim-"+strings.ReplaceAll(tc.name[:8], " ", "-"), "kim-password")
			cookie := ta.app.Sessions.Cookie.Name + "=" + ta.token(c)
			if first := fetch(noRedirects, ta.srv.URL+"/sessions/revoke-others", url.Values{}, "Cookie", cookie); first.status != http.StatusSeeOther {
				t.Fatalf("the first copy answered %d", first.status)
			}
			h := fetch(noRedirects, ta.srv.URL+tc.path, tc.form, "Cookie", cookie)
			if h.status != http.StatusConflict || !strings.Contains(h.body, "Session renewed") || h.setCookie {
				t.Errorf("answered %d (set a cookie: %v), want 409 “Session renewed” and no cookie:\n%s", h.status, h.setCookie, h.body)
			}
		})
	}
}

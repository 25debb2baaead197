package handlers

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/sessionindex"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/sessionstack"
)

// takenAfter is the session store with another request's work landing
// between a renewal's load and its take (GETDEL): the moment two tabs race.
type takenAfter struct {
	sessions.Operations
	meanwhile func(token string)
}

func (o takenAfter) Take(ctx context.Context, token string) (sessions.Taken, error) {
	o.meanwhile(token)
	return o.Operations.Take(ctx, token)
}

func (o takenAfter) TakeLive(ctx context.Context, token string) (sessions.Taken, error) {
	o.meanwhile(token)
	return o.Operations.TakeLive(ctx, token)
}

// A lab switch renews the token and so writes the session anew: evidence the
// lab noted while it ran (the httponly experiment's read, in another tab)
// goes with it, as a count made meanwhile does. The page had confirmed it.
func TestALabSwitchKeepsWhatTheLabNotedMeanwhile(t *testing.T) {
	var once sync.Once
	ta := newTestApp(t, func(a *App) {
		a.Lab = true
		a.Ops = takenAfter{Operations: a.Ops, meanwhile: func(token string) {
			once.Do(func() {
				if err := a.Ops.LabNote(context.Background(), token, "httponly", sessions.LabOutcomes{Hidden: 1}, true); err != nil {
					t.Error(err)
				}
			})
		}}
	}).serve()
	c := ta.client()
	ta.get(c, "/count")
	if r := ta.post(c, "/lab/switch/httponly", url.Values{"on": {"0"}}); r.status != http.StatusSeeOther {
		t.Fatalf("httponly off: %d", r.status)
	}
	stored := ta.redis.MustDo("GET", sessions.Key(ta.token(c)))
	if !strings.Contains(stored, `"httponly":{"hidden":1}`) || !strings.Contains(stored, `"no_httponly":true`) {
		t.Errorf("after the switch the session holds %s; want the outcome noted meanwhile and the switch", stored)
	}
}

// addedAfter is the session index with another request landing as a login
// lists its session, between the login's load and its save.
type addedAfter struct {
	sessionstack.Index
	meanwhile func()
}

func (x addedAfter) Add(ctx context.Context, user string, e sessionindex.Entry, oldID string, deadline time.Time) error {
	x.meanwhile()
	return x.Index.Add(ctx, user, e, oldID, deadline)
}

// A login that keeps its token (renewal switched off, -lab) raced by the
// switch that turns renewal back on, which takes that token: the login must
// not write the session back under the taken ID, which a second browser may
// hold. It is refused as a form on a renewed token, and no key of the old ID
// is logged in.
func TestALoginThatKeepsItsTokenDoesNotReviveATakenOne(t *testing.T) {
	var once sync.Once
	var ta *testApp
	var token string
	ta = newTestApp(t, func(a *App) {
		a.Lab = true
		a.Index = addedAfter{Index: a.Index, meanwhile: func() {
			if token == "" {
				return // the account's own sign-up
			}
			once.Do(func() {
				// The same browser's other tab, sending the switch.
				if h := fetch(noRedirects, ta.srv.URL+"/lab/switch/renewal", url.Values{"on": {"1"}},
					"Cookie", ta.app.Sessions.Cookie.Name+"="+token, "Origin", ta.srv.URL); h.status != http.StatusSeeOther {
					t.Errorf("renewal on, meanwhile: %d %s", h.status, h.body)
				}
			})
		}}
	}).serve()
	c := ta.renewalOff("erin")
	token = ta.token(c)
	r := ta.post(c, "/login", url.Values{"username": {"erin"}, "password": {"erin-password"}})
	if r.status != http.StatusConflict {
		t.Errorf("the login whose token was taken meanwhile: %d, want 409 (renewed by another request)", r.status)
	}
	if stored := ta.redis.MustDo("GET", sessions.Key(token)); stored != "" {
		t.Errorf("the taken ID's key holds %s after the login; want none", stored)
	}
	if ids := ta.redis.MustDo("HKEYS", sessions.IndexKey("erin")); strings.Contains(ids, sessions.ID(token)) {
		t.Errorf("the user's index still lists the taken ID: %s", ids)
	}
}

// A switch that does not exist is 404 whether or not the browser has a
// session: the name is checked before anything else.
func TestAnUnknownLabSwitchIsNotFound(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	if r := ta.post(ta.client(), "/lab/switch/foo", url.Values{"on": {"1"}}); r.status != http.StatusNotFound {
		t.Errorf("POST /lab/switch/foo without a session: %d, want 404", r.status)
	}
	c := ta.client()
	ta.get(c, "/count")
	if r := ta.post(c, "/lab/switch/foo", url.Values{"on": {"1"}}); r.status != http.StatusNotFound {
		t.Errorf("POST /lab/switch/foo with a session: %d, want 404", r.status)
	}
}

// A login that keeps its token (renewal off) still starts the session's
// absolute lifetime, as a renewing login does: the profile dates the end
// from the login.
func TestALoginThatKeepsItsTokenStartsTheLifetime(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	c := ta.renewalOff("fay")
	key := sessions.Key(ta.token(c))
	soon := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")
	ta.redis.MustDo("SET", key, regexp.MustCompile(`"deadline":"[^"]*"`).ReplaceAllString(ta.redis.MustDo("GET", key), `"deadline":"`+soon+`"`), "KEEPTTL")
	if r := ta.post(c, "/login", url.Values{"username": {"fay"}, "password": {"fay-password"}}); r.status != http.StatusSeeOther {
		t.Fatalf("login: %d", r.status)
	}
	stored := ta.redis.MustDo("GET", key)
	m := regexp.MustCompile(`"deadline":"([^"]*)"`).FindStringSubmatch(stored)
	if m == nil {
		t.Fatalf("no deadline in %s", stored)
	}
	end, err := time.Parse(time.RFC3339Nano, m[1])
	if want := time.Now().Add(ta.app.Sessions.Lifetime); err != nil || end.Before(want.Add(-time.Minute)) {
		t.Errorf("after the login the session ends at %s (%v); want about %s, a lifetime after the login", m[1], err, want.UTC())
	}
}

// removedAfter is the session index with another request landing as a
// session is taken off its user's list (a logout's unindex).
type removedAfter struct {
	sessionstack.Index
	meanwhile func(id string)
}

func (x removedAfter) Remove(ctx context.Context, user, id string) error {
	x.meanwhile(id)
	return x.Index.Remove(ctx, user, id)
}

// endedAfter is the session store with another request's renewal landing
// between a logout's load and its delete.
type endedAfter struct {
	sessions.Operations
	meanwhile func(token string)
}

func (o endedAfter) EndUnlessRenewed(ctx context.Context, token string) error {
	o.meanwhile(token)
	return o.Operations.EndUnlessRenewed(ctx, token)
}

// A logout and a renewal (a lab switch) sent from one browser's two tabs at
// once: whichever takes the token first, the answers tell the truth. Either
// the logout ends the session and the switch finds it ended, or the switch
// renewed it first and the logout, which cannot end the new token, says
// nothing was done (409). Never "you are logged out" with the session alive
// under the switch's new token.
func TestALogoutRacingARenewalNeverLeavesTheSessionAlive(t *testing.T) {
	switchWith := func(ta *testApp, token string) hit {
		return fetch(noRedirects, ta.srv.URL+"/lab/switch/httponly", url.Values{"on": {"0"}},
			"Cookie", ta.app.Sessions.Cookie.Name+"="+token)
	}
	t.Run("the logout first", func(t *testing.T) {
		var once sync.Once
		var ta *testApp
		var token string
		var switched hit
		ta = newTestApp(t, func(a *App) {
			a.Lab = true
			a.Index = removedAfter{Index: a.Index, meanwhile: func(string) {
				once.Do(func() { switched = switchWith(ta, token) })
			}}
		}).serve()
		c := ta.client()
		ta.register(c, "gus", "gus-password")
		token = ta.token(c)
		if r := ta.post(c, "/logout", nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?from=logout" {
			t.Errorf("the logout: %d to %q, want 303 to the page saying you are logged out", r.status, r.header.Get("Location"))
		}
		if switched.status == http.StatusSeeOther {
			t.Errorf("the switch after the logout ended the session: %d, want it refused", switched.status)
		}
		if live := ta.loggedInAs("gus"); len(live) > 0 {
			t.Errorf("after the logout, %v still hold a session logged in as gus", live)
		}
	})
	t.Run("the switch first", func(t *testing.T) {
		var once sync.Once
		var ta *testApp
		var switched hit
		ta = newTestApp(t, func(a *App) {
			a.Lab = true
			a.Ops = endedAfter{Operations: a.Ops, meanwhile: func(token string) {
				once.Do(func() { switched = switchWith(ta, token) })
			}}
		}).serve()
		c := ta.client()
		ta.register(c, "hal", "hal-password")
		r := ta.post(c, "/logout", nil)
		if r.status != http.StatusConflict || strings.Contains(r.body, "logged out") || r.header.Get("Clear-Site-Data") != "" {
			t.Errorf("the logout after the switch renewed the token: %d, want 409 saying nothing was done", r.status)
		}
		if switched.status != http.StatusSeeOther {
			t.Fatalf("the switch: %d", switched.status)
		}
		if live := ta.loggedInAs("hal"); len(live) != 1 {
			t.Errorf("sessions logged in as hal: %v; want the switch's one, which the logout said it did not end", live)
		}
	})
}

// A lab switch that loaded the session just before a login kept its token
// (renewal off), and took it just after: the login was stored and answered,
// so the switch's new token carries it on, listed, rather than the session
// as the switch had loaded it, logged out.
func TestALabSwitchCarriesOnALoginThatLandedMeanwhile(t *testing.T) {
	var once sync.Once
	var ta *testApp
	var token string
	var login hit
	ta = newTestApp(t, func(a *App) {
		a.Lab = true
		a.Ops = takenAfter{Operations: a.Ops, meanwhile: func(taken string) {
			if taken != token {
				return
			}
			once.Do(func() {
				login = fetch(noRedirects, ta.srv.URL+"/login", url.Values{"username": {"ivy"}, "password": {"ivy-password"}},
					"Cookie", ta.app.Sessions.Cookie.Name+"="+token)
			})
		}}
	}).serve()
	c := ta.renewalOff("ivy")
	token = ta.token(c)
	if r := ta.post(c, "/lab/switch/httponly", url.Values{"on": {"0"}}); r.status != http.StatusSeeOther {
		t.Fatalf("the switch: %d", r.status)
	}
	if login.status != http.StatusSeeOther {
		t.Fatalf("the login that kept the token, meanwhile: %d", login.status)
	}
	if r := ta.get(c, "/profile"); r.status != http.StatusOK || !strings.Contains(r.body, "ivy") {
		t.Errorf("the switch's new token: /profile %d; want ivy logged in, as the login answered", r.status)
	}
	ids := ta.redis.MustDo("HKEYS", sessions.IndexKey("ivy"))
	if !strings.Contains(ids, sessions.ID(ta.token(c))) || strings.Contains(ids, sessions.ID(token)) {
		t.Errorf("ivy's list holds %q; want the new token's ID and not the taken one's", ids)
	}
}

// renewalOff registers user (password user-password) from another browser,
// which logs out, and gives a browser with an anonymous session whose next
// login keeps its token (the lab's renewal switch off).
func (ta *testApp) renewalOff(user string) *http.Client {
	ta.t.Helper()
	signup := ta.client()
	ta.register(signup, user, user+"-password")
	ta.post(signup, "/logout", nil)
	c := ta.client()
	ta.get(c, "/count")
	if r := ta.post(c, "/lab/switch/renewal", url.Values{"on": {"0"}}); r.status != http.StatusSeeOther {
		ta.t.Fatalf("renewal off: %d", r.status)
	}
	return c
}

// keptAfter is the session store with another request landing between a
// kept-token login's write and its check (KeepUnlessMoved).
type keptAfter struct {
	sessions.Operations
	meanwhile func(token string)
}

func (o keptAfter) KeepUnlessMoved(ctx context.Context, token string) (sessions.Kept, error) {
	o.meanwhile(token)
	return o.Operations.KeepUnlessMoved(ctx, token)
}

// A logout sent with a token a renewal took a moment before (the logout's
// tab had not seen the renewal's answer yet) finds no session to end: it
// says nothing was done (409), as the session lives on under the new token,
// not "you are logged out".
func TestALogoutWithATokenRenewedAMomentAgoSaysNothingWasDone(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	c := ta.client()
	ta.register(c, "jan", "jan-password")
	old := ta.token(c)
	if r := ta.post(c, "/lab/switch/httponly", url.Values{"on": {"0"}}); r.status != http.StatusSeeOther {
		t.Fatalf("the switch: %d", r.status)
	}
	r := fetch(noRedirects, ta.srv.URL+"/logout", url.Values{}, "Cookie", ta.app.Sessions.Cookie.Name+"="+old)
	if r.status != http.StatusConflict || r.header.Get("Clear-Site-Data") != "" {
		t.Errorf("the logout with the token the switch took: %d (Clear-Site-Data %q), want 409 saying nothing was done",
			r.status, r.header.Get("Clear-Site-Data"))
	}
	if p := ta.get(c, "/profile"); p.status != http.StatusOK {
		t.Errorf("the switch's new token after that logout: /profile %d, want 200 (still logged in)", p.status)
	}
}

// A login that kept its token (renewal off) and a renewal or a logout of
// that token in the browser's other tab, landing just before or after the
// login wrote the session: every answer holds. A renewal after the write
// carried the login on, so the login answers 303 without handing back the
// dead token; a logout ended the session, so the login says so (401) and
// nothing stays logged in, the planted ID least of all. A kept token's
// login never sends the cookie the browser holds again.
func TestAKeptTokenLoginAnswersWhatBecameOfIt(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		form       url.Values
		before     bool // lands before the login's write (else after)
		want       int  // the login's answer
		loggedIn   bool // a session of the user lives on
	}{
		{"a switch after", "/lab/switch/httponly", url.Values{"on": {"0"}}, false, http.StatusSeeOther, true},
		{"a logout after", "/logout", url.Values{}, false, http.StatusUnauthorized, false},
		{"a logout before", "/logout", url.Values{}, true, http.StatusUnauthorized, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var once sync.Once
			var ta *testApp
			var other hit
			var token string
			meanwhile := func() {
				once.Do(func() {
					other = fetch(noRedirects, ta.srv.URL+tc.path, tc.form, "Cookie", ta.app.Sessions.Cookie.Name+"="+token)
				})
			}
			ta = newTestApp(t, func(a *App) {
				a.Lab = true
				if tc.before {
					a.Index = addedAfter{Index: a.Index, meanwhile: func() {
						if token != "" {
							meanwhile()
						}
					}}
				} else {
					a.Ops = keptAfter{Operations: a.Ops, meanwhile: func(string) { meanwhile() }}
				}
			}).serve()
			login := ta.keptTokenLogin("kim", &token)
			if login.status != tc.want || login.setCookie {
				t.Errorf("the login: %d (sets the cookie: %v), want %d and no cookie", login.status, login.setCookie, tc.want)
			}
			if stored := ta.redis.MustDo("GET", sessions.Key(token)); stored != "" {
				t.Errorf("the kept token's key holds %s after %s; want none", stored, tc.name)
			}
			live := ta.loggedInAs("kim")
			if (len(live) == 1) != tc.loggedIn || len(live) > 1 {
				t.Errorf("sessions logged in as kim after %s (answered %d): %v; want logged in: %v", tc.name, other.status, live, tc.loggedIn)
			}
		})
	}
}

// takenThen is the session store with another request's work landing just
// after a renewal's take, before the renewal goes on.
type takenThen struct {
	sessions.Operations
	then func(token string)
}

func (o takenThen) TakeLive(ctx context.Context, token string) (sessions.Taken, error) {
	t, err := o.Operations.TakeLive(ctx, token)
	o.then(token)
	return t, err
}

// listedAfter is the session index with another request landing between a
// login's own checks after its write (KeepUnlessMoved, then KeepIfListed).
type listedAfter struct {
	sessionstack.Index
	meanwhile func(token string)
}

func (x listedAfter) KeepIfListed(ctx context.Context, user, token, gen string) (bool, error) {
	x.meanwhile(token)
	return x.Index.KeepIfListed(ctx, user, token, gen)
}

// A kept-token login and a switch of the same session, interleaved the two
// ways the last attack found. The switch took the token after the login
// loaded it and before it wrote it: the switch carried the session on
// without the login, so the login's write (the ID revived) is deleted and
// the login says nothing was done; the switch's own renewal must not delete
// that write first, which made the login read it as carried on. The switch
// took it after the login's checks had begun: it carried the login on, and
// the login answers 303 as such, not "another session ended this one".
func TestAKeptTokenLoginInterleavedWithASwitch(t *testing.T) {
	t.Run("taken between the login's load and its write", func(t *testing.T) {
		var ta *testApp
		var token string
		var switched hit
		var once, onceTaken, onceWritten sync.Once
		taken, written, switchDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
		wait := func(ch chan struct{}, what string) {
			select {
			case <-ch:
			case <-time.After(5 * time.Second):
				t.Errorf("the interleaving did not happen: no %s", what)
			}
		}
		ta = newTestApp(t, func(a *App) {
			a.Lab = true
			a.Index = addedAfter{Index: a.Index, meanwhile: func() {
				if token == "" {
					return
				}
				once.Do(func() {
					go func() {
						defer close(switchDone)
						switched = fetch(noRedirects, ta.srv.URL+"/lab/switch/httponly", url.Values{"on": {"0"}},
							"Cookie", ta.app.Sessions.Cookie.Name+"="+token)
					}()
					wait(taken, "take")
				})
			}}
			a.Ops = keptAfter{Operations: takenThen{Operations: a.Ops, then: func(tk string) {
				if tk == token {
					onceTaken.Do(func() { close(taken); wait(written, "write") })
				}
			}}, meanwhile: func(string) {
				onceWritten.Do(func() { close(written); wait(switchDone, "switch answer") })
			}}
		}).serve()
		login := ta.keptTokenLogin("lou", &token)
		if login.status != http.StatusConflict {
			t.Errorf("the login the switch did not carry: %d, want 409 (nothing was done)", login.status)
		}
		if switched.status != http.StatusSeeOther {
			t.Errorf("the switch: %d", switched.status)
		}
		if live := ta.loggedInAs("lou"); len(live) > 0 {
			t.Errorf("logged in as lou: %v; want none (the login said nothing was done)", live)
		}
	})
	t.Run("taken between the login's two checks", func(t *testing.T) {
		var ta *testApp
		var token string
		var switched hit
		var once sync.Once
		ta = newTestApp(t, func(a *App) {
			a.Lab = true
			a.Index = listedAfter{Index: a.Index, meanwhile: func(listed string) {
				if listed != token {
					return
				}
				once.Do(func() {
					switched = fetch(noRedirects, ta.srv.URL+"/lab/switch/httponly", url.Values{"on": {"0"}},
						"Cookie", ta.app.Sessions.Cookie.Name+"="+token)
				})
			}}
		}).serve()
		login := ta.keptTokenLogin("max", &token)
		if login.status != http.StatusSeeOther || login.setCookie {
			t.Errorf("the login the switch carried on: %d (sets the cookie: %v), want 303 and no cookie", login.status, login.setCookie)
		}
		if switched.status != http.StatusSeeOther {
			t.Fatalf("the switch: %d", switched.status)
		}
		if live := ta.loggedInAs("max"); len(live) != 1 || live[0] == sessions.Key(token) {
			t.Errorf("logged in as max: %v; want the switch's new token alone", live)
		}
	})
}

// A logout of the kept token that lands between a kept-token login's two
// checks takes the session off its user's list: the login says the session
// ended (401), not that another of the user's sessions ended it.
func TestAKeptTokenLoginEndedBetweenItsChecksSaysLoggedOut(t *testing.T) {
	var ta *testApp
	var token string
	var logout hit
	var once sync.Once
	ta = newTestApp(t, func(a *App) {
		a.Lab = true
		a.Index = listedAfter{Index: a.Index, meanwhile: func(listed string) {
			if listed == token {
				once.Do(func() {
					logout = fetch(noRedirects, ta.srv.URL+"/logout", url.Values{}, "Cookie", ta.app.Sessions.Cookie.Name+"="+token)
				})
			}
		}}
	}).serve()
	login := ta.keptTokenLogin("ned", &token)
	if login.status != http.StatusUnauthorized || login.setCookie {
		t.Errorf("the login its own browser's logout ended: %d (sets the cookie: %v), want 401 and no cookie", login.status, login.setCookie)
	}
	if logout.status != http.StatusSeeOther {
		t.Errorf("the logout: %d", logout.status)
	}
	if stored := ta.redis.MustDo("GET", sessions.Key(token)); stored != "" {
		t.Errorf("the kept token's key holds %s; want none", stored)
	}
}

// loggedInAs lists the session keys in Redis that hold user logged in.
func (ta *testApp) loggedInAs(user string) []string {
	ta.t.Helper()
	var live []string
	for _, k := range strings.Fields(ta.redis.MustDo("KEYS", "sess:*")) {
		if strings.Contains(ta.redis.MustDo("GET", k), `"username":"`+user+`"`) {
			live = append(live, k)
		}
	}
	return live
}

// keptTokenLogin logs user in from a browser whose renewal is off
// (renewalOff), sending the request itself so that the answer is seen as
// sent; it sets *token to the kept token first, for hooks to read.
func (ta *testApp) keptTokenLogin(user string, token *string) hit {
	ta.t.Helper()
	*token = ta.token(ta.renewalOff(user))
	return fetch(noRedirects, ta.srv.URL+"/login", url.Values{"username": {user}, "password": {user + "-password"}},
		"Cookie", ta.app.Sessions.Cookie.Name+"="+*token)
}

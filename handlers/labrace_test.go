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
	ta.register(ta.client(), "erin", "erin-password")
	c := ta.client()
	ta.get(c, "/count")
	if r := ta.post(c, "/lab/switch/renewal", url.Values{"on": {"0"}}); r.status != http.StatusSeeOther {
		t.Fatalf("renewal off: %d", r.status)
	}
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
	ta.register(ta.client(), "fay", "fay-password")
	c := ta.client()
	ta.get(c, "/count")
	if r := ta.post(c, "/lab/switch/renewal", url.Values{"on": {"0"}}); r.status != http.StatusSeeOther {
		t.Fatalf("renewal off: %d", r.status)
	}
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

package handlers

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/sessionindex"
)

// failingIndex is the real session index with one command failing on
// demand, as when Redis drops a connection between two commands.
type failingIndex struct {
	sessionIndex
	failAdd, failRevokeOthers bool
}

func (f *failingIndex) Add(ctx context.Context, user string, e sessionindex.Entry, oldID string, deadline time.Time) error {
	if f.failAdd {
		return syscall.ECONNRESET
	}
	return f.sessionIndex.Add(ctx, user, e, oldID, deadline)
}

func (f *failingIndex) RevokeOthers(ctx context.Context, user, keepID string) (int, error) {
	if f.failRevokeOthers {
		return 0, errors.New("index script failed")
	}
	return f.sessionIndex.RevokeOthers(ctx, user, keepID)
}

func newFailingIndexApp(t *testing.T) (*testApp, *failingIndex) {
	fi := &failingIndex{}
	ta := newTestApp(t, func(a *App) { fi.sessionIndex = a.Index; a.Index = fi })
	return ta, fi
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
	if p := ta.get(c, "/profile"); p.status == http.StatusOK {
		t.Errorf("GET /profile after a failed login: 200, want the login prompt")
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
	if p := ta.get(c, "/profile"); p.status == http.StatusOK {
		t.Errorf("GET /profile after the failed change: 200, want logged out")
	}
	fresh := ta.client()
	if l := ta.post(fresh, "/login", url.Values{"username": {"gus"}, "password": {"brand-new-password"}}); l.status != http.StatusSeeOther {
		t.Errorf("login with the new password: %d", l.status)
	}
}

// A handler's own cookie goes out beside the session cookie, not instead.
func TestHandlerCookieDoesNotReplaceTheSessionCookie(t *testing.T) {
	ta := newTestApp(t)
	h := ta.app.withSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ta.app.Sessions.Put(r.Context(), "views", 1)
		http.SetCookie(w, &http.Cookie{Name: "theme", Value: "dark", Path: "/"})
		w.WriteHeader(http.StatusNoContent)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	var names []string
	for _, c := range rec.Result().Cookies() {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); got != "session theme" && got != "theme session" {
		t.Errorf("cookies set: %q, want session and theme", got)
	}
}

// HEAD /live answers with headers and ends; it holds no stream.
func TestHeadLiveEnds(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	c.Timeout = 3 * time.Second
	ta.register(c, "hal", "hal-password")
	req, _ := http.NewRequest(http.MethodHead, ta.srv.URL+"/live", nil)
	if r := ta.do(c, req); r.status != http.StatusOK {
		t.Fatalf("HEAD /live: %d", r.status)
	}
	if r := ta.get(c, "/debug/live"); !strings.Contains(r.body, "streams 0") {
		t.Errorf("after HEAD /live:\n%s", r.body)
	}
}

// When htmx's history cache misses it asks again with HX-Request and puts
// the answer in place of <body>: it must get the whole page.
func TestHistoryRestoreGetsTheWholePage(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "hil", "hil-password")
	frag := ta.get(c, "/profile", "HX-Request", "true")
	full := ta.get(c, "/profile", "HX-Request", "true", "HX-History-Restore-Request", "true")
	if strings.Contains(frag.body, "<nav") {
		t.Fatalf("the fragment has the layout's nav; the test cannot tell them apart")
	}
	if !strings.Contains(full.body, "<nav") {
		t.Errorf("history restore got a fragment, want the whole page:\n%s", full.body)
	}
}

// A Redis error while reading the session key for the panel names the
// session by its log id in the log, never by its key (which is the token).
func TestInspectErrorLogsNoToken(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "ned", "ned-password")
	token := ta.token(c)
	ta.redis.MustDo("ACL", "SETUSER", "default", "-memory") // as some managed Redis services do
	if r := ta.get(c, "/redis"); r.status != http.StatusInternalServerError {
		t.Errorf("GET /redis with MEMORY refused: %d, want 500", r.status)
	}
	logs := ta.logs.String()
	if !strings.Contains(logs, "NOPERM") {
		t.Errorf("the failure is not in the log:\n%s", logs)
	}
	if strings.Contains(logs, token) {
		t.Errorf("the log holds the session token:\n%s", logs)
	}
}

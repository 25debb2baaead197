package oneredis

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/views"
)

// Two app processes on one Redis, as `go tool task demo` runs them: a
// login on A is a login on B, a count on A reaches an event stream on B, a
// revoke on A logs out a session served by B, and SIGTERM ends open streams.
func TestTwoInstancesShareSessionsAndLiveUpdates(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	a := apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "a")
	b := apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "b")
	laptop, phone := apptest.Client(t), apptest.Client(t)

	if s := apptest.PostForm(t, laptop, a.URL+"/register", url.Values{"username": {"erin"}, "password": {"erin-password"}}); s != http.StatusSeeOther {
		t.Fatalf("register on a: %d", s)
	}
	// Cookies belong to the host, not the port: the login on a holds on b.
	if status, body := apptest.Get(t, laptop, b.URL+"/profile"); status != http.StatusOK || !strings.Contains(body, "Hello erin") {
		t.Fatalf("profile on b after login on a: %d", status)
	}

	t.Run("a count on a reaches a stream on b", func(t *testing.T) {
		apptest.Get(t, laptop, a.URL+"/count")
		s := apptest.OpenStream(t, laptop, b.URL+"/live")
		for want := 2; want <= 3; want++ {
			apptest.Get(t, laptop, a.URL+"/count")
			if ev := s.Next(views.SSECount); ev.Data != fmt.Sprint(want) {
				t.Errorf("count event on b = %q, want %d", ev.Data, want)
			}
		}
		s.Close()
	})

	t.Run("a revoke on a logs out a session served by b", func(t *testing.T) {
		if s := apptest.PostForm(t, phone, b.URL+"/login", url.Values{"username": {"erin"}, "password": {"erin-password"}}); s != http.StatusSeeOther {
			t.Fatalf("login on b: %d", s)
		}
		phoneStream := apptest.OpenStream(t, phone, b.URL+"/live")
		_, page := apptest.Get(t, laptop, a.URL+"/sessions")
		id := otherSessionID(t, page)
		if s := apptest.PostForm(t, laptop, a.URL+"/sessions/"+id+"/revoke", nil); s != http.StatusSeeOther {
			t.Fatalf("revoke on a: %d", s)
		}
		phoneStream.Next(views.SSEEnded)
		if status, _ := apptest.Get(t, phone, b.URL+"/profile"); status != http.StatusUnauthorized {
			t.Errorf("revoked session on b: %d, want 401", status)
		}
	})

	t.Run("SIGTERM ends open streams and the process exits cleanly", func(t *testing.T) {
		s := apptest.OpenStream(t, laptop, b.URL+"/live")
		b.Stop() // fails the test unless the process exits 0
		if !s.Ended() {
			t.Errorf("stream still open after its server stopped")
		}
	})
}

var otherRow = regexp.MustCompile(`<tr data-testid="session-row" data-session-id="([0-9a-f]+)">`)

// otherSessionID is the id of the first session row that is not this device.
func otherSessionID(t *testing.T, page string) string {
	t.Helper()
	m := otherRow.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no other session on the sessions page:\n%s", page)
	}
	return m[1]
}

// -store memory reproduces the tutorial's problem on purpose: every page
// says so, a restart logs everyone out, and two instances do not share
// logins. Accounts stay in Redis.
func TestMemoryStoreLosesSessions(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	first := apptest.Start(t, bin, "-redis", rs.URL(), "-store", "memory", "-instance", "first")
	other := apptest.Start(t, bin, "-redis", rs.URL(), "-store", "memory", "-instance", "other")
	c := apptest.Client(t)

	if s := apptest.PostForm(t, c, first.URL+"/register", url.Values{"username": {"frank"}, "password": {"frank-password"}}); s != http.StatusSeeOther {
		t.Fatalf("register: %d", s)
	}
	status, body := apptest.Get(t, c, first.URL+"/profile")
	if status != http.StatusOK || !strings.Contains(body, `data-testid="banner"`) || !strings.Contains(body, "memory") {
		t.Fatalf("profile in memory mode: %d, want 200 with the memory banner", status)
	}
	for want := 1; want <= 2; want++ {
		if _, body := apptest.Get(t, c, first.URL+"/count"); apptest.ViewCount(t, body) != fmt.Sprint(want) {
			t.Errorf("count = %s, want %d", apptest.ViewCount(t, body), want)
		}
	}
	if status, _ := apptest.Get(t, c, other.URL+"/profile"); status != http.StatusUnauthorized {
		t.Errorf("profile on another instance: %d, want 401 (it does not share logins)", status)
	}

	first.Stop()
	again := apptest.Start(t, bin, "-redis", rs.URL(), "-store", "memory", "-instance", "again")
	if status, _ := apptest.Get(t, c, again.URL+"/profile"); status != http.StatusUnauthorized {
		t.Errorf("profile after restart: %d, want 401 (the session died with the process)", status)
	}
	if s := apptest.PostForm(t, c, again.URL+"/login", url.Values{"username": {"frank"}, "password": {"frank-password"}}); s != http.StatusSeeOther {
		t.Errorf("login after restart: %d, want 303 (the account is in Redis)", s)
	}
}

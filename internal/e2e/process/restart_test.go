package process

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// Practice step 4: restart the server and nothing is lost, because the
// session lives in Redis, not in the process.
func TestRestartKeepsSession(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	first := apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "first")
	c := apptest.Client(t)

	if s := apptest.PostForm(t, c, first.URL+"/register", url.Values{"username": {"dana"}, "password": {"dana-password"}}); s != http.StatusSeeOther {
		t.Fatalf("register: %d", s)
	}
	for range 2 {
		apptest.Get(t, c, first.URL+"/count")
	}
	first.Stop() // SIGTERM, graceful

	// The new process listens on another port; the cookie belongs to the
	// host, not the port, so the browser sends it there too.
	second := apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "second")
	status, body := apptest.Get(t, c, second.URL+"/profile")
	if status != http.StatusOK || !strings.Contains(body, "Hello dana") {
		t.Fatalf("profile after restart: %d, want 200 with Hello dana", status)
	}
	if !strings.Contains(body, "second") {
		t.Errorf("page does not show the instance that served it")
	}
	if _, body := apptest.Get(t, c, second.URL+"/count"); apptest.ViewCount(t, body) != "3" {
		t.Errorf("count after restart = %s, want 3", apptest.ViewCount(t, body))
	}
}

// -lifetime reaches the session: the key's TTL is the absolute lifetime
// when that is shorter than the idle timeout.
func TestLifetimeFlagBoundsTheSessionKey(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	app := apptest.Start(t, bin, "-redis", rs.URL(), "-lifetime", "2m")
	c := apptest.Client(t)
	if s := apptest.PostForm(t, c, app.URL+"/register", url.Values{"username": {"lia"}, "password": {"lia-password"}}); s != http.StatusSeeOther {
		t.Fatalf("register: %d", s)
	}
	ttl, err := strconv.Atoi(rs.MustDo("TTL", "sess:"+apptest.SessionToken(t, c, app.URL)))
	if err != nil || ttl <= 0 || ttl > 120 {
		t.Errorf("TTL of the session key with -lifetime 2m: %d (%v), want 1..120 s", ttl, err)
	}
}

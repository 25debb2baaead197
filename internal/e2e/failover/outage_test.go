package failover

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// outageBound is how long a request may take while Redis is gone: the
// request's Redis budget plus a margin for a loaded machine under -race,
// well short of a hang (a stopped Redis process never answers).
const outageBound = redisconn.RequestBudget + 2*time.Second

// The real process through a Redis outage and a Redis restart: 503 pages
// within outageBound while Redis is gone, healthz 200 and readyz 503, the process
// keeps running, and it recovers by itself with the login and the count
// intact (append-only persistence, as `task run` starts Redis).
func TestProcessSurvivesRedisOutageAndRestart(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	p := apptest.Start(t, bin, "-redis", rs.URL())
	c := apptest.Client(t)
	if s := apptest.PostForm(t, c, p.URL+"/register", url.Values{"username": {"ola"}, "password": {"ola-password"}}); s != http.StatusSeeOther {
		t.Fatalf("register: %d", s)
	}
	apptest.Get(t, c, p.URL+"/count")

	for _, outage := range []struct {
		name        string
		break_, fix func()
	}{
		{"stopped", rs.Stop, rs.Start},
		{"hung", rs.Pause, rs.Resume},
	} {
		outage.break_()
		for _, path := range []string{"/count", "/profile", "/", "/sessions", "/live", "/redis"} {
			start := time.Now()
			status, body := apptest.Get(t, c, p.URL+path)
			if took := time.Since(start); status != http.StatusServiceUnavailable || took > outageBound ||
				!strings.Contains(body, "Session store unavailable") {
				t.Errorf("Redis %s: GET %s: %d after %v, want the 503 page within %v", outage.name, path, status, took, outageBound)
			}
		}
		if status, _ := apptest.Get(t, c, p.URL+"/healthz"); status != http.StatusOK {
			t.Errorf("Redis %s: healthz %d, want 200", outage.name, status)
		}
		if status, _ := apptest.Get(t, c, p.URL+"/readyz"); status != http.StatusServiceUnavailable {
			t.Errorf("Redis %s: readyz %d, want 503", outage.name, status)
		}
		select {
		case <-p.Exited():
			t.Fatalf("the app exited during the outage\n%s", p.Log())
		default:
		}
		outage.fix()
		apptest.WaitUntilOK(t, c, p.URL+"/readyz")
	}

	rs.Restart()
	apptest.WaitUntilOK(t, c, p.URL+"/readyz")
	_, body := apptest.WaitUntilOK(t, c, p.URL+"/count")
	if apptest.ViewCount(t, body) != "2" {
		t.Errorf("count after outages and a Redis restart = %s, want 2 (the 503s counted nothing)", apptest.ViewCount(t, body))
	}
	if status, body := apptest.Get(t, c, p.URL+"/profile"); status != http.StatusOK || !strings.Contains(body, "Hello ola") {
		t.Errorf("profile after the Redis restart: %d, the login was lost", status)
	}
}

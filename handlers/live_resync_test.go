package handlers

import (
	"net/http"
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/views"
)

// When the live subscription's connection is lost (a Redis hiccup) and
// re-opened, counts made in between were published to nobody: the open
// page is brought up to the current count once the subscription is back,
// so what it shows is never stale.
func TestLivePageCatchesUpAfterTheSubscriptionIsReopened(t *testing.T) {
	rs := redistest.Start(t)
	ta := newLiveApp(t, rs, "a")
	c := browser(t, firefoxLinux)
	ta.get(c, "/count") // count 1 creates the session
	s := apptest.OpenStream(t, c, ta.srv.URL+"/live")
	if s.Status != http.StatusOK {
		t.Fatalf("GET /live: %d", s.Status)
	}
	// The hiccup: Redis drops the subscription connection; the hub opens
	// it again a second later. These counts fall in between.
	rs.MustDo("CLIENT", "KILL", "TYPE", "pubsub")
	for range 3 {
		if r := ta.get(c, "/count"); r.status != http.StatusOK {
			t.Fatalf("GET /count: %d", r.status)
		}
	}
	// A count published before the connection really dropped may still
	// come first (on a slow machine); the page must reach the current one.
	for ev := s.Next(views.SSECount); ev.Data != "4"; ev = s.Next(views.SSECount) {
		if ev.Data != "2" && ev.Data != "3" {
			t.Fatalf("count event after the subscription came back = %q, want it to reach 4 (the current count)", ev.Data)
		}
	}
	s.Next(views.SSESessions) // a sessions page reloads its list too
	ta.get(c, "/count")
	// Live updates flow again (a second re-subscription, if the first
	// connection was not yet usable, repeats the current count: harmless).
	for ev := s.Next(views.SSECount); ev.Data != "5"; ev = s.Next(views.SSECount) {
		if ev.Data != "4" {
			t.Fatalf("count event after that = %q, want 5", ev.Data)
		}
	}
}

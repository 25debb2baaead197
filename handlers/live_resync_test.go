package handlers

import (
	"net/http"
	"testing"
	"time"

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
	killSubscription(t, rs)
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

// The hello carries the count as stored: a catch-up that finds the same
// count (nothing was counted while the subscription was down, or before the
// hub's first connection came up) repeats nothing, so every count event is
// news to the page.
func TestACatchUpRepeatsNoCountTheHelloSent(t *testing.T) {
	rs := redistest.Start(t)
	ta := newLiveApp(t, rs, "a")
	c := browser(t, firefoxLinux)
	ta.get(c, "/count") // count 1
	s := apptest.OpenStream(t, c, ta.srv.URL+"/live")
	s.Next(views.SSEHello)
	killSubscription(t, rs) // the hub reconnects and catches up
	// The catch-up ends with its nudge to reload the sessions list.
	timeout := time.After(10 * time.Second)
	for caughtUp := false; !caughtUp; {
		select {
		case ev, ok := <-s.Events:
			if !ok {
				t.Fatal("the stream ended before its catch-up")
			}
			if ev.Name == views.SSECount {
				t.Errorf("count event %q before the catch-up's end: the hello said 1 and nothing was counted", ev.Data)
			}
			caughtUp = ev.Name == views.SSESessions
		case <-timeout:
			t.Fatal("no catch-up within 10s of the subscription's loss")
		}
	}
	ta.get(c, "/count")
	if ev := s.Next(views.SSECount); ev.Data != "2" {
		t.Errorf("count event after the catch-up = %q, want 2", ev.Data)
	}
}

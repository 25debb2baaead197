package handlers

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/sessionlab/sessionlab/internal/redisconn"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// Every 503 the table can give says when to come back, and all say the same.
func TestEveryUnavailableFailureSaysWhenToRetry(t *testing.T) {
	for _, f := range []failure{failInternal, failRedisDown, failRedisMayHaveRun, failShuttingDown, failNotReady,
		failCrossSite, failNotFound, failMethodNotAllowed, failRenewed, failRevokeOwnSession, failTooLarge,
		failFormTimeout, failMalformedForm} {
		h := http.Header{}
		f.setHeaders(h)
		if f.Status == http.StatusServiceUnavailable && h.Get("Retry-After") != "5" {
			t.Errorf("%d %q: Retry-After %q, want 5", f.Status, f.Title, h.Get("Retry-After"))
		}
		if f.Status != http.StatusServiceUnavailable && h.Get("Retry-After") != "" {
			t.Errorf("%d %q: Retry-After %q on a failure a retry does not cure", f.Status, f.Title, h.Get("Retry-After"))
		}
	}
}

// A stream asked for while the server stops (its hub closed) is a 503 with
// Retry-After: the browser's EventSource gives up on a 503, the page's
// script waits and tries again.
func TestLiveWhileStoppingIs503WithRetryAfter(t *testing.T) {
	ta := newLiveApp(t, redistest.Start(t), "a")
	c := browser(t, firefoxLinux)
	ta.get(c, "/count") // a session, so the stream subscribes
	ta.app.Live.Close()
	r := ta.get(c, "/live")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "5" {
		t.Errorf("/live after the hub closed: %d, Retry-After %q; want 503 with Retry-After 5", r.status, r.header.Get("Retry-After"))
	}
}

// A write refused because the Sentinel master has no replica in sync was
// never sent: the page says nothing was changed, which is true.
func TestAWriteRefusedForWantOfAReplicaChangedNothing(t *testing.T) {
	err := fmt.Errorf("sessions: incr views: %w", redisconn.ErrNoReplica)
	if f := failureOf(err, true); f != failRedisDown {
		t.Errorf("%d %q, want %q", f.Status, f.Message, failRedisDown.Message)
	}
}

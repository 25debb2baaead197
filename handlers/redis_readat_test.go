package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/views"
)

// The panel says when it read this browser's keys from Redis only when it
// read any: for a browser with no session and no login it sends nothing
// (its own trace says so), so it names no moment of reading.
func TestThePanelNamesAReadOnlyWhenItRead(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	panel := func() string {
		t.Helper()
		r := ta.get(c, "/redis", "HX-Request", "true", "HX-Target", views.IDRedisPanel)
		if r.status != http.StatusOK {
			t.Fatalf("the panel: %d", r.status)
		}
		return r.body
	}
	if body := panel(); strings.Contains(body, `data-testid="redis-read-at"`) {
		i := strings.Index(body, `data-testid="redis-read-at"`)
		t.Errorf("with no session the panel, which sent nothing to Redis, says %s", body[i:min(len(body), i+120)])
	}
	ta.anonymousSession(c)
	if body := panel(); !strings.Contains(body, `data-testid="redis-read-at"`) {
		t.Error("with a session the panel does not say when it read its key from Redis")
	}
}

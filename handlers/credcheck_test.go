package handlers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// currentFails is the account store with the credential check's read
// failing while failing is set, as when Redis refuses the connection.
type currentFails struct {
	accountStore
	failing *atomic.Bool
}

func (s currentFails) Current(ctx context.Context, username, gen string) (bool, error) {
	if s.failing.Load() {
		return false, fmt.Errorf("accounts: read %s: %w", username, syscall.ECONNREFUSED)
	}
	return s.accountStore.Current(ctx, username, gen)
}

// The credential check fails closed: when it cannot read the account, a
// logged-in request gets a 503, never its page (a revoked session must not
// slip through an outage), and the session is left as it was.
func TestCredentialCheckFailsClosed(t *testing.T) {
	var failing atomic.Bool
	ta := newTestApp(t, func(a *App) { a.Accounts = currentFails{a.Accounts, &failing} })
	c := ta.client()
	ta.register(c, "cora", "cora-password")
	failing.Store(true)
	r := ta.get(c, "/profile")
	if r.status != http.StatusServiceUnavailable || strings.Contains(r.body, "cora") {
		t.Errorf("profile while the credential check cannot read: %d; want 503 without the user's page", r.status)
	}
	failing.Store(false)
	if r := ta.get(c, "/profile"); r.status != http.StatusOK || !strings.Contains(r.body, "cora") {
		t.Errorf("profile once the check reads again: %d, want 200 and still logged in", r.status)
	}
}

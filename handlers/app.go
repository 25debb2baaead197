// Package handlers is sessionlab's HTTP layer: the route table, middleware,
// and one file per feature. It renders views and calls internal packages.
package handlers

import (
	"context"
	"log/slog"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/inspect"
)

// accountStore is what the auth handlers need of internal/accounts.
type accountStore interface {
	Create(ctx context.Context, username, password string) (accounts.Account, error)
	Authenticate(ctx context.Context, username, password string) (accounts.Account, error)
	Get(ctx context.Context, username string) (accounts.Account, error)
}

// sessionOps are the in-place changes to a stored session that must not race
// with other requests of the same session (see internal/sessions).
type sessionOps interface {
	IncrViews(ctx context.Context, token string) (int, error)
	Touch(ctx context.Context, token string, seen, expiry time.Time) error
	Take(ctx context.Context, token string) ([]byte, error)
}

// keyInspector reads a key as redis-cli would.
type keyInspector interface {
	Key(ctx context.Context, key string) (inspect.Entry, error)
}

// App holds the dependencies every handler shares. Build it once in main.
type App struct {
	Log       *slog.Logger
	Sessions  *scs.SessionManager // Lifetime is the absolute session lifetime
	Ops       sessionOps
	Accounts  accountStore
	Inspector keyInspector
	Ready     func(context.Context) error // is Redis reachable?
	LogID     func(token string) string   // salted short hash for logs

	Instance   string        // shown on every page
	Idle       time.Duration // idle timeout, enforced on the server
	TouchEvery time.Duration // how stale "last seen" may get before a request refreshes it
	Banner     string        // shown on every page when set
}

package handlers

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/requestlog"
	"github.com/sessionlab/sessionlab/internal/sessions"
)

// A logged-in GET /count made two round trips: loadAndSave read the
// session, then the handler's script counted. When this process has seen
// the session logged in before, the script now reads it and counts in one
// (sessions.Ops.CountChecked), if the session passes in Redis the checks
// loadAndSave would make of it in Go: its credential generation is the
// account's, no touch is due, it is not idle, its deadline is ahead. Any
// other session is loaded and counted as before. (docs/performance.md:
// /count 6,510 → 8,784 req/s measured with a build that skipped the read.)

// checkedCounter is Ops with counts made before the session is loaded;
// MemoryOps (-store memory) has none, and needs none.
type checkedCounter interface {
	CountChecked(ctx context.Context, token string, c sessions.CountCheck, v sessions.Visit) (sessions.CheckedCount, bool)
}

// maxCountHints bounds the sessions a process remembers for countFirst; past
// it they are forgotten at once, each then costing one count's extra trip.
const maxCountHints = 10_000

// countHints are the user and credential generation this process last saw
// in each logged-in session, by token: what countFirst asks the script to
// find still there. A hint is never trusted, only checked.
type countHints struct {
	m sync.Map // token -> countHint
	n atomic.Int64
}

type countHint struct{ user, gen string }

func (h *countHints) get(token string) (countHint, bool) {
	v, ok := h.m.Load(token)
	if !ok {
		return countHint{}, false
	}
	return v.(countHint), true
}

// note records a logged-in session that passed loadAndSave's checks.
func (h *countHints) note(token string, u sessions.User) {
	if u.Gen == "" {
		return
	}
	if old, ok := h.get(token); ok && old == (countHint{u.Username, u.Gen}) {
		return
	}
	if h.n.Add(1) > maxCountHints {
		h.m.Clear()
		h.n.Store(0)
	}
	h.m.Store(token, countHint{u.Username, u.Gen})
}

// countFirst makes GET /count's count in the round trip that reads the
// session, when the checks allow (see above): nil when it did not count,
// and the caller loads the session and counts as usual.
func (a *App) countFirst(ctx context.Context, r *http.Request, token string) *sessions.CheckedCount {
	ops, ok := a.Ops.(checkedCounter)
	if !ok {
		return nil
	}
	h, ok := a.countHints.get(token)
	if !ok {
		return nil
	}
	now := time.Now()
	// After this "last seen", loadAndSave would neither touch the session
	// nor find it idle.
	within := a.TouchEvery
	if a.Idle > 0 {
		within = min(within, a.Idle)
	}
	visit := a.visit(r, true)
	if info := requestlog.From(ctx); info != nil && info.Proxied {
		visit.Request = info.ID // as count does
	}
	c, ok := ops.CountChecked(ctx, token, sessions.CountCheck{User: h.user, Gen: h.gen, AccountKey: accounts.Key(h.user),
		SeenAfter: now.Add(-within), Now: now}, visit)
	if !ok {
		return nil
	}
	if kind, down := redisconn.Unavailable(c.Err); down && !kind.MayHaveRun() {
		// Refused or failed before it changed anything (the Sentinel gate,
		// an OOM): the usual path tries, and says so. A write no replica
		// acknowledged, or one with no answer, may have run: it stays.
		return nil
	}
	return &c
}

// failAfterCount answers a request whose count countFirst made, when a
// later step of loading its session failed: whatever that error, the count
// was sent, so the answer must not say that nothing was changed.
func (a *App) failAfterCount(w http.ResponseWriter, r *http.Request, err error) {
	f := failureOf(err, true)
	if f == failRedisDown {
		f = failRedisMayHaveRun
	}
	a.logFailure(r, f, err)
	if !clientGone(r) {
		a.answer(w, r, f)
		return
	}
	w.WriteHeader(statusClientGone)
}

// isCountRoute: the request is the one countFirst counts for (count.go's
// route, GET only: HEAD counts nothing).
func isCountRoute(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == "/count"
}

// countedFor is the count countFirst made of the session token names, if
// this request's cookie named it and it is still the request's session.
func (s *sessionState) countedFor(token string) *sessions.CheckedCount {
	if s == nil || s.counted == nil || token != s.presented {
		return nil
	}
	return s.counted
}

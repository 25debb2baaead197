package handlers

import (
	"errors"
	"net/http"

	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// count handles GET /count: every view adds one to the session's "views",
// as in the tutorial. Like the tutorial's route it is a GET: a view is what
// it counts, and anyone may count (no login needed).
//
// A stored session is incremented inside Redis (one atomic script), never
// read-modify-written here, so concurrent views on any instance are all
// counted. Only the first view of a new session goes through scs, which
// creates the key.
func (a *App) count(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, _ := stateOf(ctx)
	if isHTMX(r) && st.lost {
		// The session was in an earlier process's memory: reload the
		// whole page, which says so and starts a new one.
		w.Header().Set("HX-Refresh", "true")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if isHTMX(r) && st.stale {
		a.sessionEnded(w, r)
		return
	}
	u, _ := a.currentUser(ctx)
	if r.Method == http.MethodHead {
		// HEAD must change nothing: the page as it is, no view counted.
		a.render(w, r, http.StatusOK, "View counter", views.CountPage(views.Count{
			Views: a.Sessions.GetInt(ctx, sessions.KeyViews), User: u.Username, Origin: a.origin(ctx)}))
		return
	}
	var n int
	token := a.Sessions.Token(ctx)
	if token != "" {
		owner, _ := a.currentUser(ctx)
		incr, err := a.Ops.IncrViews(ctx, token, owner.Username)
		switch {
		case errors.Is(err, sessions.ErrNoSession):
			// Expired or revoked since it was loaded.
			if isHTMX(r) {
				a.sessionEnded(w, r)
				return
			}
			if err := a.Sessions.Destroy(ctx); err != nil {
				a.fail(w, r, err)
				return
			}
			token = ""
		case err != nil:
			a.fail(w, r, err)
			return
		default:
			n = incr
		}
	}
	if token == "" {
		n = a.Sessions.GetInt(ctx, sessions.KeyViews) + 1
		a.Sessions.Put(ctx, sessions.KeyViews, n)
		// A new session: the page has no live stream yet to tell its
		// Redis panel (a stored session's count arrives over the stream).
		w.Header().Set("HX-Trigger", views.EventSessionChanged)
	}
	if isHTMX(r) && r.Header.Get("HX-Target") == views.IDViewCount {
		a.write(w, r, http.StatusOK, views.Counter(n))
		return
	}
	a.render(w, r, http.StatusOK, "View counter", views.CountPage(views.Count{Views: n, User: u.Username, Origin: a.origin(ctx)}))
}

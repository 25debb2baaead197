package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// profile handles GET /profile, the protected page.
func (a *App) profile(w http.ResponseWriter, r *http.Request, u sessions.User) {
	if fromSessionHook(r) {
		// The page's session ended, and the browser already holds a new
		// one (a login in another tab): reload the page with it.
		w.Header().Set("HX-Refresh", "true")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a.render(w, r, http.StatusOK, "Profile", views.ProfilePage(a.profileView(r.Context(), u)))
}

func (a *App) profileView(ctx context.Context, u sessions.User) views.Profile {
	now := time.Now()
	seen := now
	status := a.Sessions.Status(ctx)
	st, ok := stateOf(ctx)
	if ok && !st.seen.IsZero() && status != scs.Modified {
		seen = st.seen
	}
	var deadline time.Time
	if ok && st.checked.live && status == scs.Unmodified { // as asChecked
		deadline = st.checked.deadline
	} else {
		deadline = a.Sessions.Deadline(ctx)
	}
	return views.Profile{
		Username:     u.Username,
		Role:         u.Role,
		Views:        a.Sessions.GetInt(ctx, sessions.KeyViews),
		Origin:       a.origin(ctx),
		Remember:     a.Sessions.GetBool(ctx, sessions.KeyRememberMe),
		IdleDeadline: sessions.EndsAt(seen, deadline, a.Idle),
		WarnBefore:   sessions.WarnBefore,
		AbsDeadline:  deadline,
		Lifetime:     a.Sessions.Lifetime,
		Now:          now,
	}
}

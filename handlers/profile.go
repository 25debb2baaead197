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
func (a *App) profile(w http.ResponseWriter, r *http.Request) {
	u, ok := a.currentUser(r.Context())
	if !ok {
		a.loginRequired(w, r)
		return
	}
	if fromSessionHook(r) {
		// The page's session ended, and the browser already holds a new
		// one (a login in another tab): reload the page with it.
		w.Header().Set("HX-Refresh", "true")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a.render(w, r, http.StatusOK, "Profile", views.ProfilePage(a.profileView(r.Context(), u)))
}

// fromSessionHook: the request is views.SessionEndedHook asking where its page
// should go now that the page's session has ended.
func fromSessionHook(r *http.Request) bool {
	return isHTMX(r) && r.Header.Get("HX-Trigger") == views.IDSessionHook
}

func (a *App) profileView(ctx context.Context, u sessions.User) views.Profile {
	now := time.Now()
	seen := now
	if st, ok := stateOf(ctx); ok && !st.seen.IsZero() && a.Sessions.Status(ctx) != scs.Modified {
		seen = st.seen
	}
	deadline := a.Sessions.Deadline(ctx)
	return views.Profile{
		Username:     u.Username,
		Role:         u.Role,
		Views:        a.Sessions.GetInt(ctx, sessions.KeyViews),
		Origin:       a.origin(ctx),
		Remember:     a.Sessions.GetBool(ctx, sessions.KeyRememberMe),
		IdleDeadline: sessions.EndsAt(seen, deadline, a.Idle),
		WarnBefore:   warnBefore,
		AbsDeadline:  deadline,
		Now:          now,
	}
}

// loginRequired answers a request for a page that needs a login. An htmx
// request whose session has just ended is sent to the login page as a whole,
// rather than having a login form swapped into a small fragment.
func (a *App) loginRequired(w http.ResponseWriter, r *http.Request) {
	if st, _ := stateOf(r.Context()); isHTMX(r) && st != nil && st.stale {
		a.sessionEnded(w, r)
		return
	}
	if fromSessionHook(r) {
		// No session cookie left: a logout in another tab cleared it.
		w.Header().Set("HX-Redirect", "/login?from=logout")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a.render(w, r, http.StatusUnauthorized, "Please log in",
		views.LoginPrompt("This page shows your session's data, so it needs you to be logged in."))
}

// sessionEnded sends an htmx page whose session is gone to the login page,
// unless the session was renewed a moment ago by a login: then the browser
// holds the new token, and reloading the page is what the user expects.
func (a *App) sessionEnded(w http.ResponseWriter, r *http.Request) {
	if renewed, err := a.renewedMeanwhile(r.Context()); err == nil && renewed {
		a.tokenRenewed(w, r)
		return
	}
	w.Header().Set("HX-Redirect", "/login?from=expired")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
}

package handlers

import (
	"net/http"

	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// fromSessionHook: the request is views.SessionEndedHook asking where its page
// should go now that the page's session has ended.
func fromSessionHook(r *http.Request) bool {
	return isHTMX(r) && header(r.Header, hdrHXTrigger) == views.IDSessionHook
}

// fromSessionList: the request is the sessions page's list (views.SessionList)
// refreshing itself on a live update.
func fromSessionList(r *http.Request) bool {
	return isHTMX(r) && header(r.Header, hdrHXTrigger) == views.IDSessionList
}

// userHandler serves a page that needs a login, for the logged-in user u.
type userHandler func(w http.ResponseWriter, r *http.Request, u sessions.User)

// requireLogin serves h to a logged-in session only, so the route table shows
// which pages are protected; a userHandler cannot be routed without it.
func (a *App) requireLogin(h userHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := a.currentUser(r.Context())
		if !ok {
			a.loginRequired(w, r)
			return
		}
		h(w, r, u)
	})
}

// loginRequired answers a request for a page that needs a login; htmx goes to
// the whole login page, not a form swapped into a fragment.
func (a *App) loginRequired(w http.ResponseWriter, r *http.Request) {
	if fromSessionList(r) {
		// The sessions page's list refreshing itself after its session
		// ended: the logout this tab just sent ends it too, and its own
		// navigation is still on its way. The page's session-ended hook,
		// beside the list, moves it after that, and knows a logout from
		// a revoke; the list leaves the page as it is.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if st, _ := stateOf(r.Context()); st.isStale() {
		if isHTMX(r) {
			a.sessionEnded(w, r)
			return
		}
		// A page or form sent with a token renewed a moment ago (a second
		// tab during a login, the second copy of a form sent twice): the
		// browser is logged in under the new one, so "Please log in"
		// would be untrue.
		if renewed, err := a.renewedMeanwhile(r.Context()); err == nil && renewed {
			a.tokenRenewed(w, r)
			return
		}
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
// or reloads it if a login just renewed the token.
func (a *App) sessionEnded(w http.ResponseWriter, r *http.Request) {
	if renewed, err := a.renewedMeanwhile(r.Context()); err == nil && renewed {
		a.tokenRenewed(w, r)
		return
	}
	to := "/login?from=expired"
	if st, _ := stateOf(r.Context()); st.isUnreadable() {
		to = "/login" // its banner says what happened, which "expired" would not
	} else if st != nil && st.unreadableAccount != "" {
		to = "/login?from=account"
	}
	w.Header().Set("HX-Redirect", to)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
}

package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/a-h/templ"

	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// staySignedIn handles POST /session/touch: it counts as activity, moving
// the idle deadline, and shows the new one.
func (a *App) staySignedIn(w http.ResponseWriter, r *http.Request, u sessions.User) {
	ctx := r.Context()
	token := a.Sessions.Token(ctx)
	if token == "" {
		a.loginRequired(w, r)
		return
	}
	now := time.Now()
	end := sessions.EndsAt(now, a.Sessions.Deadline(ctx), a.Idle)
	err := a.Ops.Touch(ctx, token, u.Username, now, end)
	if errors.Is(err, sessions.ErrNoSession) {
		a.sessionEnded(w, r)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header()[hdrHXTrigger] = sessionChanged
	if isHTMX(r) {
		a.write(w, r, http.StatusOK, templ.Join(
			views.StaySignedInControl(views.StaySignedIn{IdleDeadline: end, Now: now, WarnBefore: sessions.WarnBefore, Touched: true}),
			views.IdleDeadline(end, now, true)))
		return
	}
	http.Redirect(w, r, "/profile", http.StatusSeeOther)
}

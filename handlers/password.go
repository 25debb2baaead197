package handlers

import (
	"context"
	"errors"
	"net/http"

	"github.com/a-h/templ"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/metrics"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// changePassword handles POST /password: a new token here and every other
// session logged out, so whoever knew the old password is locked out.
func (a *App) changePassword(w http.ResponseWriter, r *http.Request, u sessions.User) {
	ctx := r.Context()
	if !a.parseForm(w, r) {
		return
	}
	current, next := r.PostForm.Get("current"), r.PostForm.Get("new")
	var pf views.PasswordForm
	var newPassword accounts.NewPassword
	if current == "" {
		pf.Current.Error = "Enter your current password."
	}
	for _, fe := range fieldErrors(accounts.CheckPassword(next)) {
		pf.New.Error = fe.Message
	}
	if pf.Current.Error == "" && pf.New.Error == "" {
		tk, ok := a.passwordCheckAllowed(w, r, u, func(msg string) templ.Component {
			p, _ := a.sessionsView(r, u)
			p.Password = views.PasswordForm{Username: u.Username, Error: msg}
			return views.SessionsPage(p)
		})
		if !ok {
			return
		}
		// The check, kept in flight while it waits for a hashing slot, then
		// the new password's hash, before anything changes: a change once
		// begun is never refused for want of a slot. Each hash holds a slot
		// for itself alone, never while waiting on Redis, so a hung Redis
		// cannot hold up the logins waiting for one.
		stop := tk.KeepInFlight(ctx)
		_, err := a.Accounts.Authenticate(ctx, u.Username, current)
		stop()
		a.checked(ctx, tk, err)
		if err == nil {
			newPassword, err = a.Accounts.HashNewPassword(ctx, next)
		}
		switch {
		case errors.Is(err, accounts.ErrBadCredentials):
			pf.Current.Error = "That is not your current password."
		case err != nil:
			a.fail(w, r, err)
			return
		}
	}
	if pf.Current.Error != "" || pf.New.Error != "" {
		a.showSessions(w, r, u, "", pf)
		return
	}
	partway := failWords{"Password not changed, logged out",
		"Your password was not changed, and your other sessions were not touched. But the session store (Redis) failed partway, " +
			"after this browser's session had been given a new token, so this browser is logged out. Log in again with your current password."}
	err := a.endOtherSessions(r, u, metrics.EndPasswordChange, partway, func(ctx context.Context) (string, error) {
		return a.Accounts.SetPassword(ctx, u.Username, newPassword)
	})
	if errors.Is(err, errRenewed) || errors.Is(err, errEndedMeanwhile) {
		a.notRenewed(w, r, err)
		return
	}
	if errors.Is(err, errCredentialsUnchanged) {
		a.failUnchanged(w, r, err, partway)
		return
	}
	if err != nil {
		// The new password is stored; this session and the others are
		// not in order. Failing closed: logged out here, told the truth.
		a.logOutHere(ctx)
		a.failWith(w, r, err, "Password changed, logged out",
			"Your new password is saved, but ending your other sessions failed on our side, so this browser was logged out too. "+
				"Log in with the new password, then use “Log out everywhere else” on the Sessions page.")
		return
	}
	a.ifSaveFails(ctx, "Password changed, logged out",
		"Your new password is saved and your other sessions are logged out, but keeping this one failed on our side, so this browser was logged out too. "+
			"Log in with the new password.")
	a.ifRevokedAsRenewed(ctx, failWords{"Password changed, logged out",
		"Your new password was saved and your other sessions were logged out. But another of your sessions logged out everywhere else, " +
			"or changed the password, at the same moment, which ended this one as it started. Log in with the new password; " +
			"if it is refused, the other session changed the password after you."})
	a.Log.InfoContext(r.Context(), "password changed", "user", u.Username)
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", "/sessions?from=password")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, "/sessions?from=password", http.StatusSeeOther)
}

package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/metrics"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// registerForm handles GET /register.
func (a *App) registerForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "Create an account", views.RegisterPage(views.AuthForm{}))
}

// register handles POST /register: create the account, then log it in.
func (a *App) register(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	name, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	form := views.AuthForm{Username: views.Field{Value: echo(name)}}
	if _, err := accounts.CheckNew(name, password); err != nil {
		a.registerFailed(w, r, form, err)
		return
	}
	// Checked only now: only input that will be hashed counts.
	if !a.signupAllowed(w, r, form) {
		return
	}
	acct, err := a.Accounts.Create(r.Context(), name, password)
	if errors.Is(err, accounts.ErrBusy) {
		a.signupNotHashed(r)
		a.passwordNotChecked(w, r, err, func(msg string) templ.Component { form.Error = msg; return views.RegisterPage(form) })
		return
	}
	if err != nil {
		a.registerFailed(w, r, form, err)
		return
	}
	a.Log.InfoContext(r.Context(), "account created", "user", acct.Username)
	if err := a.logIn(r, acct, false); err != nil {
		a.failWith(w, r, err, accountCreatedTitle, accountCreatedMessage)
		return
	}
	a.ifSaveFails(r.Context(), accountCreatedTitle, accountCreatedMessage)
	a.toProfile(w, r)
}

// A sign-up that created the account and could not log it in.
const (
	accountCreatedTitle   = "Account created, not logged in"
	accountCreatedMessage = "Your account was created, but logging you in failed on our side. Log in with your new username and password."
)

// registerFailed shows the form again with what was wrong (422, or 409 taken).
func (a *App) registerFailed(w http.ResponseWriter, r *http.Request, form views.AuthForm, err error) {
	switch fes := fieldErrors(err); {
	case len(fes) > 0:
		for _, fe := range fes {
			setFieldError(&form, fe)
		}
		a.renderForm(w, r, http.StatusUnprocessableEntity, "Create an account", views.RegisterPage(form))
	case errors.Is(err, accounts.ErrTaken):
		form.Username.Error = "That username is taken. Pick another, or log in if it is yours."
		a.renderForm(w, r, http.StatusConflict, "Create an account", views.RegisterPage(form))
	default:
		a.fail(w, r, err)
	}
}

// loginForm handles GET /login.
func (a *App) loginForm(w http.ResponseWriter, r *http.Request) {
	var form views.AuthForm
	// The notices tell what happened to this browser's session: not to a
	// browser logged in again since (another tab's login, Back after one).
	from := r.URL.Query().Get("from")
	if _, loggedIn := a.currentUser(r.Context()); loggedIn {
		from = ""
	}
	switch from {
	case "logout":
		form.Notice = "You are logged out. Your session's key is gone from Redis."
	case "expired":
		form.Notice = "Your session has ended (it expired or was revoked). Please log in again."
	case "account":
		form.Notice = "You were logged out: your account's key in Redis holds something that is not an account " +
			"this app wrote (a change made by hand with redis-cli?), so the login could not be checked."
	}
	a.render(w, r, http.StatusOK, "Log in", views.LoginPage(form))
}

// login handles POST /login. Unknown user and wrong password get the same
// answer, in about the same time.
func (a *App) login(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	name, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	remember := r.PostForm.Get("remember") != ""
	form := views.AuthForm{Username: views.Field{Value: echo(name)}, Remember: remember}
	if strings.TrimSpace(name) == "" {
		form.Username.Error = "Enter your username."
	}
	switch {
	case password == "":
		form.Password.Error = "Enter your password."
	case len(password) > accounts.PasswordMax:
		form.Password.Error = fmt.Sprintf("Passwords are at most %d bytes.", accounts.PasswordMax)
	}
	if form.Username.Error != "" || form.Password.Error != "" {
		a.renderForm(w, r, http.StatusUnprocessableEntity, "Log in", views.LoginPage(form))
		return
	}
	tk, ok := a.loginAllowed(w, r, form, name)
	if !ok {
		return
	}
	// It may wait its turn for a password-hashing slot (accounts.Hashing).
	stop := tk.KeepInFlight(r.Context())
	acct, err := a.Accounts.Authenticate(r.Context(), name, password)
	stop()
	a.checked(r.Context(), tk, err)
	if errors.Is(err, accounts.ErrBusy) {
		a.Metrics.Login(metrics.LoginBusy)
		a.passwordNotChecked(w, r, err, func(msg string) templ.Component { form.Error = msg; return views.LoginPage(form) })
		return
	}
	if errors.Is(err, accounts.ErrBadCredentials) {
		a.Metrics.Login(metrics.LoginWrong)
		a.Log.InfoContext(r.Context(), "login failed", "session", a.LogID(a.Sessions.Token(r.Context())))
		form.Error = "Invalid username or password."
		a.renderForm(w, r, http.StatusUnauthorized, "Log in", views.LoginPage(form))
		return
	}
	if errors.Is(err, accounts.ErrUnreadable) {
		a.Log.WarnContext(r.Context(), "login refused: the account's stored value cannot be read", "err", err)
		form.Error = "The account's key in Redis, " + accounts.Key(strings.ToLower(strings.TrimSpace(name))) +
			", holds something that is not an account this app wrote (a change made by hand with redis-cli?), " +
			"so no password can be checked. It is left as it is; logging in works again once it holds the account again."
		a.renderForm(w, r, http.StatusConflict, "Log in", views.LoginPage(form))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.logIn(r, acct, remember); err != nil {
		// logIn may fail after renewing the token: the browser's session is
		// then taken from Redis (GETDEL), so even a refusal such as OOM has
		// changed something, and "nothing was changed" would be untrue.
		a.failWith(w, r, err, "Not logged in", loginFailedMessage)
		return
	}
	a.ifSaveFails(r.Context(), "Not logged in", loginFailedMessage)
	a.Metrics.Login(metrics.LoginOK)
	a.toProfile(w, r)
}

// loginFailedMessage answers a login that failed in logIn: true whether it
// failed before the renewal (nothing changed) or after it (the previous
// session taken, its views kept for a minute for the next login).
const loginFailedMessage = "The session store (Redis) could not finish logging you in, so you are not logged in, " +
	"and this browser's previous session may have ended. Please log in again in a moment."

// logIn puts the user in the session under a new token, so a planted token is
// worthless, and in the index; if that fails it stays logged out, since a
// session missing from the index could not be revoked.
func (a *App) logIn(r *http.Request, acct accounts.Account, remember bool) (err error) {
	ctx := r.Context()
	old := a.Sessions.Token(ctx)
	prev, _ := a.currentUser(ctx)
	// The fixation experiment (-lab) can switch renewal off for this session.
	keep := old != "" && a.labOf(ctx).NoRenewal
	if keep {
		keptToken(ctx)
		// As a renewal would (scs's RenewToken): the profile dates the
		// session's end from this login.
		a.Sessions.SetDeadline(ctx, time.Now().Add(a.Sessions.Lifetime))
	} else if err := a.renewToken(r, true, true); err != nil {
		return err
	}
	if a.Lab {
		a.labLogin(r, old, !keep) // after the renewal: on the lab as it was taken
	}
	defer func() {
		if err != nil {
			a.logOutHere(ctx)
		}
	}()
	a.Sessions.Put(ctx, sessions.KeyUser, sessions.User{Username: acct.Username, Role: acct.Role, Gen: acct.Gen})
	if prev.Username != "" && prev.Username != acct.Username {
		if err := a.unindex(ctx, prev.Username, old); err != nil {
			return err
		}
	}
	if err := a.indexLogin(r, acct.Username, old); err != nil {
		return err
	}
	if remember {
		a.Sessions.RememberMe(ctx, true)
	} else {
		a.Sessions.Remove(ctx, sessions.KeyRememberMe)
	}
	return nil
}

// logOutHere takes the user out of the session, keeping the rest (views):
// how a login or password change that failed partway ends.
func (a *App) logOutHere(ctx context.Context) {
	a.Sessions.Remove(ctx, sessions.KeyUser)
	a.Sessions.Remove(ctx, sessions.KeyRememberMe)
}

// renewToken gives the session a new token, taking the old key with GETDEL so
// everything stored concurrently moves with it (carry), and the browser's
// row too. A
// login starts the session's absolute lifetime again (scs's RenewToken
// does); any other renewal (a password change, a lab switch) keeps its end,
// which the profile promises whatever you do.
func (a *App) renewToken(r *http.Request, loggedIn, login bool) error {
	ctx := r.Context()
	old := a.Sessions.Token(ctx)
	end := a.Sessions.Deadline(ctx)
	gone := "" // the cookie's token, when its key is already gone
	if old != "" {
		take := a.Ops.Take
		if !login {
			// Not marked renewed if gone: this request gives up, and the
			// browser's next one must find its session ended, not renewed.
			take = a.Ops.TakeLive
		}
		t, err := take(ctx, old)
		switch {
		case errors.Is(err, sessions.ErrTokenRenewed) && !login:
			// Another request renewed it since this one loaded it (the
			// same form sent twice): what this one would change is no
			// longer this session's.
			return errRenewed
		case errors.Is(err, sessions.ErrNoSession) && !login:
			// Ended (a revoke or logout elsewhere) since this one loaded it.
			return errEndedMeanwhile
		case errors.Is(err, sessions.ErrNoSession):
			gone = old
		case err != nil:
			return err
		default:
			a.carry(ctx, t)
			if !t.Deadline.IsZero() {
				end = t.Deadline
			}
			_, loggedIn = a.currentUser(ctx)
		}
	} else if st, ok := stateOf(ctx); ok {
		gone = st.presented
	}
	if gone != "" {
		// A double-submitted login starts from the views the first carried:
		// the browser keeps whichever cookie comes last.
		views, renewed, err := a.Ops.Renewed(ctx, gone)
		if err != nil {
			return err
		}
		if renewed && views > a.Sessions.GetInt(ctx, sessions.KeyViews) {
			a.Sessions.Put(ctx, sessions.KeyViews, views)
		}
	}
	// The old key is gone (taken above, or already): scs's own DEL of it
	// could only delete a write another request made since, such as a
	// login that kept the token, whose check (KeepUnlessMoved) must see it.
	if err := a.Sessions.RenewToken(sessions.WithEnded(ctx)); err != nil {
		return err
	}
	if !login && !end.IsZero() {
		a.Sessions.SetDeadline(ctx, end)
	}
	if old != "" {
		v := a.visit(r, loggedIn)
		if err := a.Ops.MoveBrowser(ctx, old, a.Sessions.Token(ctx), a.Sessions.GetInt(ctx, sessions.KeyViews), v); err != nil {
			return err
		}
	}
	if old == "" {
		a.Metrics.SessionCreated() // a first login: there was no session to renew
	} else {
		a.Metrics.SessionRenewed()
	}
	a.Log.InfoContext(ctx, "session renewed", "old", a.LogID(old), "session", a.LogID(a.Sessions.Token(ctx)))
	return nil
}

// carry makes the renewed session what its old key held as it was taken,
// not what this request loaded: a count, a lab outcome, or a login that kept
// the token, stored by another request since, would otherwise be written
// over by the new key. The request's own changes come after the renewal.
func (a *App) carry(ctx context.Context, t sessions.Taken) {
	if t.Values == nil {
		return // unreadable: the session as loaded
	}
	for _, k := range a.Sessions.Keys(ctx) {
		if _, ok := t.Values[k]; !ok {
			a.Sessions.Remove(ctx, k)
		}
	}
	for k, v := range t.Values {
		a.Sessions.Put(ctx, k, v)
	}
	l, _ := t.Values[sessions.KeyLab].(sessions.Lab)
	labNoted(ctx, l)
}

// toProfile ends a successful login: a 303, or for htmx the profile fragment.
func (a *App) toProfile(w http.ResponseWriter, r *http.Request) {
	if !isHTMX(r) {
		http.Redirect(w, r, "/profile", http.StatusSeeOther)
		return
	}
	w.Header().Set("HX-Push-Url", "/profile")
	w.Header()[hdrHXTrigger] = sessionChanged
	u, _ := a.currentUser(r.Context())
	a.render(w, r, http.StatusOK, "Profile", views.ProfilePage(a.profileView(r.Context(), u)))
}

// logout handles POST /logout: the key is deleted and the cookie cleared.
func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	old := a.Sessions.Token(ctx)
	// The cookie's session was gone when this request loaded it: a renewal
	// in another tab may have taken it just before, and the session lives
	// on under the new token, which this cannot end.
	if old == "" && a.answeredRenewed(w, r) {
		return
	}
	if old != "" {
		// A renewal in another tab (a lab switch, a password change) may
		// have taken the token since this request loaded it: the session
		// then lives on under the new one, which this logout cannot end.
		if err := a.Ops.EndUnlessRenewed(ctx, old); errors.Is(err, sessions.ErrTokenRenewed) {
			a.tokenRenewed(w, r)
			return
		} else if err != nil {
			a.fail(w, r, err)
			return
		}
		if u, ok := a.currentUser(ctx); ok {
			// Ended first: a renewal after this finds nothing to carry
			// on, so none can list the session again.
			if err := a.unindex(ctx, u.Username, old); err != nil {
				a.Log.WarnContext(ctx, "logged-out session left on its user's list until the list drops it",
					"session", a.LogID(old), "err", err)
			}
		}
	}
	if err := a.Sessions.Destroy(sessions.WithEnded(ctx)); err != nil {
		a.fail(w, r, err)
		return
	}
	if old != "" {
		a.Metrics.SessionsEnded(metrics.EndLogout, 1)
		a.Log.InfoContext(r.Context(), "session destroyed", "session", a.LogID(old))
		if err := a.Ops.Ended(ctx, old); err != nil {
			// The logout stands; other tabs learn it on their next request.
			a.Log.WarnContext(r.Context(), "logout not announced to open pages", "session", a.LogID(old), "err", err)
		}
		if err := a.Ops.DropBrowser(ctx, sessions.ID(old), a.computer(r)); err != nil {
			// The logout stands; the row leaves the list with the window.
			a.Log.WarnContext(r.Context(), "logged-out session left on the browsers list", "session", a.LogID(old), "err", err)
		}
	}
	w.Header().Set("Clear-Site-Data", `"cookies"`)
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", "/login?from=logout")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, "/login?from=logout", http.StatusSeeOther)
}

package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/a-h/templ"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/views"
)

// loginThrottle limits password guessing and sign-ups (see internal/throttle
// for the policy): Attempt is asked before a password is checked, Succeeded
// after it was right, Signup before a new account's password is hashed.
type loginThrottle interface {
	Attempt(ctx context.Context, account string, addr netip.Addr) (wait time.Duration, err error)
	Succeeded(ctx context.Context, account string, addr netip.Addr) error
	Signup(ctx context.Context, addr netip.Addr) (wait time.Duration, err error)
}

// throttleAccount is the account a login names, for counting: "" when the
// name can never be an account (only the address is counted then).
func throttleAccount(name string) string {
	n, err := accounts.NormalizeUsername(name)
	if err != nil {
		return ""
	}
	return n
}

// loginAllowed counts a login attempt before its password is checked. Past a
// limit it answers 429 with Retry-After and the login form saying how long
// to wait, and reports false. A blocked attempt never reaches bcrypt, so the
// answer is the same whether the password was right or not.
func (a *App) loginAllowed(w http.ResponseWriter, r *http.Request, form views.AuthForm, name string) bool {
	if a.Throttle == nil {
		return true
	}
	addr := a.clientIP(r)
	wait, err := a.Throttle.Attempt(r.Context(), throttleAccount(name), addr)
	return a.allowed(w, r, "login", addr, wait, err, func(secs int) (string, templ.Component) {
		form.Error = "Too many failed logins. To protect the account, logins from here are paused: try again " +
			waitText(secs) + "."
		return "Log in", views.LoginPage(form)
	})
}

// loginSucceeded clears the failures of this account from this address and
// makes the address known for it. A failure here is logged, not shown: the
// login itself is good.
func (a *App) loginSucceeded(r *http.Request, account string) {
	if a.Throttle == nil {
		return
	}
	if err := a.Throttle.Succeeded(r.Context(), account, a.clientIP(r)); err != nil {
		a.Log.Warn("login throttle not cleared", "err", err)
	}
}

// signupAllowed counts a sign-up from the client's address before its
// password is hashed; past the limit it answers 429 with Retry-After on the
// register form and reports false.
func (a *App) signupAllowed(w http.ResponseWriter, r *http.Request, form views.AuthForm) bool {
	if a.Throttle == nil {
		return true
	}
	addr := a.clientIP(r)
	wait, err := a.Throttle.Signup(r.Context(), addr)
	return a.allowed(w, r, "sign-up", addr, wait, err, func(secs int) (string, templ.Component) {
		form.Error = "Too many accounts were created from your address. Please try again " + waitText(secs) + "."
		return "Create an account", views.RegisterPage(form)
	})
}

// allowed turns a throttle's answer into the response: on an error a 503 (it
// fails closed); past a limit, 429 with Retry-After and the form that page
// builds for the wait, in whole seconds. It reports whether to go on.
func (a *App) allowed(w http.ResponseWriter, r *http.Request, what string, addr netip.Addr,
	wait time.Duration, err error, page func(secs int) (title string, c templ.Component)) bool {
	if err != nil {
		a.fail(w, r, err)
		return false
	}
	if wait <= 0 {
		return true
	}
	secs := int((wait + time.Second - 1) / time.Second)
	a.Log.Warn(what+" throttled", "client", addr.String(), "retry_after", secs)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	title, c := page(secs)
	a.render(w, r, http.StatusTooManyRequests, title, c)
	return false
}

func waitText(secs int) string {
	if secs <= 1 {
		return "in a second"
	}
	if secs < 60 {
		return fmt.Sprintf("in %d seconds", secs)
	}
	if m := (secs + 59) / 60; m > 1 {
		return fmt.Sprintf("in %d minutes", m)
	}
	return "in a minute"
}

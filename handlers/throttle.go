package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/a-h/templ"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/metrics"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/throttle"
	"github.com/sessionlab/sessionlab/views"
)

// rateLimiter is the throttle (internal/throttle, where the policy is).
type rateLimiter interface {
	Login(ctx context.Context, account string, addr netip.Addr) (*throttle.Ticket, time.Duration, error)
	PasswordCheck(ctx context.Context, account, sessionID string) (*throttle.Ticket, time.Duration, error)
	Signup(ctx context.Context, addr netip.Addr) (wait time.Duration, err error)
	SignupNotHashed(ctx context.Context, addr netip.Addr) error
	NewSession(ctx context.Context, addr netip.Addr) (wait time.Duration, err error)
	NewSessionStep(addr netip.Addr) throttle.Step
	RevokeOthers(ctx context.Context, account string) (wait time.Duration, err error)
	LabSwitch(ctx context.Context, session string) (wait time.Duration, err error)
}

// throttleLogging has t log its counter resets to log.
func throttleLogging(t *throttle.Throttle, log *slog.Logger) *throttle.Throttle {
	t.Log = log
	return t
}

// throttleAccount is the account a login names, "" when it can never be one.
func throttleAccount(name string) string {
	n, err := accounts.NormalizeUsername(name)
	if err != nil {
		return ""
	}
	return n
}

// loginAllowed asks the throttle before a login's password is checked; past a
// limit it answers 429 and reports false. Settle the ticket after the check.
func (a *App) loginAllowed(w http.ResponseWriter, r *http.Request, form views.AuthForm, name string) (*throttle.Ticket, bool) {
	if a.Throttle == nil {
		return nil, true
	}
	addr := a.clientIP(r)
	tk, wait, err := a.Throttle.Login(r.Context(), throttleAccount(name), addr)
	inFlight := errors.Is(err, throttle.ErrInFlight)
	if inFlight {
		err = nil // a refusal, with its wait
	}
	if err == nil && wait > 0 {
		a.Metrics.Login(metrics.LoginThrottled)
	}
	return tk, a.allowed(w, r, "login", addr, wait, err, func(secs int) (string, templ.Component) {
		form.Error = "Too many failed logins. To protect the account, logins from here are paused: try again " +
			waitText(secs) + "."
		if inFlight { // none may have failed
			form.Error = "Too many logins to this account from here are being checked at once, so this one was not checked. Please try again " +
				waitText(secs) + "."
		}
		return "Log in", views.LoginPage(form)
	})
}

// passwordCheckAllowed asks the throttle before a password change checks the current password.
func (a *App) passwordCheckAllowed(w http.ResponseWriter, r *http.Request, u sessions.User, page func(msg string) templ.Component) (*throttle.Ticket, bool) {
	if a.Throttle == nil {
		return nil, true
	}
	tk, wait, err := a.Throttle.PasswordCheck(r.Context(), u.Username, sessions.ID(a.Sessions.Token(r.Context())))
	inFlight := errors.Is(err, throttle.ErrInFlight)
	if inFlight {
		err = nil // a refusal, with its wait
	}
	return tk, a.allowed(w, r, "password check", a.clientIP(r), wait, err, func(secs int) (string, templ.Component) {
		if inFlight { // none may have been wrong
			return "Active sessions", page("Too many password checks of this account are in progress at once, so this one was not made. Please try again " +
				waitText(secs) + ".")
		}
		return "Active sessions", page("Too many wrong current passwords. To protect the account, password changes are paused: try again " +
			waitText(secs) + ".")
	})
}

// checked settles a throttle ticket: only ErrBadCredentials is a failure. It
// is settled even if the client left: one that closed only its side of the
// connection still reads the answer. A failure to settle is only logged: the
// attempt is forgotten within seconds.
func (a *App) checked(ctx context.Context, tk *throttle.Ticket, err error) {
	ctx = context.WithoutCancel(ctx) // the request's Redis budget stays
	o := throttle.Succeeded
	switch {
	case errors.Is(err, accounts.ErrBadCredentials):
		o = throttle.Failed
	case err != nil:
		o = throttle.Unchecked
	}
	if err := tk.Done(ctx, o); err != nil {
		a.Log.WarnContext(ctx, "throttle not settled", "outcome", string(o), "err", err)
	}
}

// signupAllowed counts a sign-up before its password is hashed; past the
// limit it answers 429 and reports false.
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

// signupNotHashed takes back signupAllowed's count of a sign-up refused
// for a hashing slot; if Redis fails, it stays counted (logged).
func (a *App) signupNotHashed(r *http.Request) {
	if a.Throttle == nil {
		return
	}
	if err := a.Throttle.SignupNotHashed(r.Context(), a.clientIP(r)); err != nil {
		a.Log.WarnContext(r.Context(), "a sign-up refused for a hashing slot stays counted against its address", "err", err)
	}
}

// revokeOthersAllowed counts a "log out everywhere else" of u's account
// before anything is changed; past the limit it answers 429 with the
// sessions list saying why, and reports false.
func (a *App) revokeOthersAllowed(w http.ResponseWriter, r *http.Request, u sessions.User) bool {
	if a.Throttle == nil {
		return true
	}
	wait, err := a.Throttle.RevokeOthers(r.Context(), u.Username)
	return a.allowed(w, r, "log out everywhere else", a.clientIP(r), wait, err, func(secs int) (string, templ.Component) {
		p, _ := a.sessionsView(r, u) // a list it cannot read says so
		p.Password.Username = u.Username
		p.Refused = "Logging out everywhere else is paused for your account: it was done several times in the last few minutes. " +
			"Please try again " + waitText(secs) + "; nothing was changed. To end one session now, use its Revoke button; " +
			"changing your password also logs out every other session."
		if isHTMX(r) && r.Header.Get("HX-Target") == views.IDSessionList {
			return "Active sessions", views.SessionList(p)
		}
		return "Active sessions", views.SessionsPage(p)
	})
}

// labSwitchAllowed counts a lab switch of the request's session before
// anything is changed; past the limit it answers 429 and reports false. A
// session's switches are counted under its origin (process and moment it
// was created), which its renewals keep, unlike its token.
func (a *App) labSwitchAllowed(w http.ResponseWriter, r *http.Request) bool {
	if a.Throttle == nil {
		return true
	}
	ctx := r.Context()
	o, ok := a.Sessions.Get(ctx, sessions.KeyOrigin).(sessions.Origin)
	if !ok {
		o = a.recordOrigin(ctx)
	}
	name := o.Process + ":" + strconv.FormatInt(o.At.UnixMilli(), 10)
	wait, err := a.Throttle.LabSwitch(ctx, name)
	return a.allowed(w, r, "lab switch", a.clientIP(r), wait, err, func(secs int) (string, templ.Component) {
		f := failure{Status: http.StatusTooManyRequests, Title: "Lab switches paused",
			Message: "Lab switches are paused for this session: it flipped them more often in the last minute than an experiment needs. " +
				"Please try again " + waitText(secs) + "; nothing was changed."}
		return f.Title, views.ProblemPage(problemOf(r, f))
	})
}

// errTooManySessions: the address started too many anonymous sessions lately.
type errTooManySessions struct{ wait time.Duration }

func (e *errTooManySessions) Error() string {
	return fmt.Sprintf("too many new sessions from this address; retry in %v", e.wait)
}

// newSessionAllowed asks the throttle before an anonymous session's key is
// first written: nil to go ahead, *errTooManySessions past the limit.
func (a *App) newSessionAllowed(r *http.Request) error {
	if a.Throttle == nil {
		return nil
	}
	wait, err := a.Throttle.NewSession(r.Context(), a.clientIP(r))
	if err != nil {
		return err
	}
	if wait > 0 {
		return &errTooManySessions{wait}
	}
	return nil
}

// newSessionStep is the limit on new anonymous sessions for r's client, for
// a script that counts it itself; the zero Step without a throttle.
func (a *App) newSessionStep(r *http.Request) throttle.Step {
	if a.Throttle == nil {
		return throttle.Step{}
	}
	return a.Throttle.NewSessionStep(a.clientIP(r))
}

// tooManySessions answers a request refused a new anonymous session (429).
func (a *App) tooManySessions(w http.ResponseWriter, r *http.Request, e *errTooManySessions) {
	a.allowed(w, r, "new session", a.clientIP(r), e.wait, nil, func(secs int) (string, templ.Component) {
		title := "Too many new sessions"
		return title, views.ProblemPage(views.Problem{Status: http.StatusTooManyRequests, Title: title,
			Message: "Too many new sessions were started from your address. Please try again " + waitText(secs) +
				", or keep your browser's cookie: a session you already have is never refused."})
	})
}

// allowed turns a throttle's answer into the response (an error fails closed,
// 503; past a limit 429) and reports whether to go on.
func (a *App) allowed(w http.ResponseWriter, r *http.Request, what string, addr netip.Addr,
	wait time.Duration, err error, page func(secs int) (title string, c templ.Component)) bool {
	if err != nil {
		a.fail(w, r, err)
		return false
	}
	if wait <= 0 {
		return true
	}
	secs := wholeSeconds(wait)
	a.tally(r.Context(), tallyEvent{kind: what + " throttled", msg: what + " throttled", level: slog.LevelWarn,
		names: byClient, key: throttle.Subject(addr), last: []any{"last_retry_after", secs}})
	title, c := page(secs)
	a.answerWith(w, r, failure{Status: http.StatusTooManyRequests, Title: title, RetryAfter: wait}, c)
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

// passwordsBusy logs, once a minute with a count by client, the password
// checks refused because every hashing slot stayed taken (accounts.Hashing):
// in a flood, a line per request would be a flood of lines.
func (a *App) passwordsBusy(r *http.Request) {
	a.tally(r.Context(), tallyEvent{kind: "password check busy", msg: "password check refused: every hashing slot was taken",
		level: slog.LevelWarn, names: byRequests, key: throttle.Subject(a.clientIP(r)),
		last: []any{"last_route", a.route(r)}})
}

// passwordNotChecked answers a password step that got no hashing slot (or
// whose client left waiting): page, when given, is the form saying why.
func (a *App) passwordNotChecked(w http.ResponseWriter, r *http.Request, err error, page func(msg string) templ.Component) {
	if !errors.Is(err, accounts.ErrBusy) || page == nil {
		a.fail(w, r, err)
		return
	}
	a.passwordsBusy(r)
	a.answerWith(w, r, failPasswordsBusy, page(failPasswordsBusy.Message))
}

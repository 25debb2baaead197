package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/inspect"
	"github.com/sessionlab/sessionlab/internal/sessionindex"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/useragent"
	"github.com/sessionlab/sessionlab/views"
)

// sessionsPage handles GET /sessions: every live session of the current
// user, on every server, read from the user's index in one call.
func (a *App) sessionsPage(w http.ResponseWriter, r *http.Request) {
	u, ok := a.currentUser(r.Context())
	if !ok {
		a.loginRequired(w, r)
		return
	}
	a.showSessions(w, r, u, sessionsNotice(r.URL.Query().Get("from")), views.PasswordForm{})
}

// sessionsNotice says what the action that led to the sessions page did.
func sessionsNotice(from string) string {
	switch from {
	case "password":
		return "Your password is changed, and every other session of yours is logged out."
	case "revoked-others":
		return "Every other session of yours is logged out."
	}
	return ""
}

// showSessions renders the sessions page, or the list alone when the list
// asked for itself (a live update, a revoke).
func (a *App) showSessions(w http.ResponseWriter, r *http.Request, u sessions.User, notice string, pf views.PasswordForm) {
	p, err := a.sessionsView(r.Context(), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pf.Username = u.Username
	p.Notice, p.Password = notice, pf
	if isHTMX(r) && r.Header.Get("HX-Target") == views.IDSessionList {
		a.write(w, r, http.StatusOK, views.SessionList(p))
		return
	}
	status := http.StatusOK
	if pf.Current.Error != "" || pf.New.Error != "" || pf.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	a.render(w, r, status, "Active sessions", views.SessionsPage(p))
}

func (a *App) sessionsView(ctx context.Context, u sessions.User) (views.Sessions, error) {
	p := views.Sessions{Now: time.Now()}
	entries, err := a.Index.List(ctx, u.Username)
	if errors.Is(err, sessionindex.ErrUnavailable) {
		p.Unavailable = true
		return p, nil
	}
	if err != nil {
		return p, err
	}
	current := sessions.ID(a.Sessions.Token(ctx))
	for _, e := range entries {
		p.Rows = append(p.Rows, views.SessionRow{
			ID:       e.ID,
			Device:   useragent.Parse(e.UserAgent).String(),
			IP:       e.IP,
			Created:  e.CreatedAt(),
			LastSeen: e.LastSeenAt(),
			Instance: e.Instance,
			Current:  e.ID == current,
		})
	}
	return p, nil
}

// revokeSession handles POST /sessions/{id}/revoke: the session's key is
// deleted at once, so its next request, on any instance, is logged out; its
// open pages are told and go to the login page.
func (a *App) revokeSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u, ok := a.currentUser(ctx)
	if !ok {
		a.loginRequired(w, r)
		return
	}
	id := r.PathValue("id")
	if id == sessions.ID(a.Sessions.Token(ctx)) {
		a.problem(w, r, http.StatusBadRequest, "That is this session", "To end the session you are using, log out.")
		return
	}
	revoked, err := a.Index.Revoke(ctx, u.Username, id)
	if errors.Is(err, sessionindex.ErrUnavailable) {
		a.showSessions(w, r, u, "", views.PasswordForm{})
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if revoked {
		a.Log.Info("session revoked", "user", u.Username, "by", a.LogID(a.Sessions.Token(ctx)))
	}
	a.afterRevoke(w, r, u, "")
}

// revokeOthers handles POST /sessions/revoke-others: "log out everywhere else".
func (a *App) revokeOthers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u, ok := a.currentUser(ctx)
	if !ok {
		a.loginRequired(w, r)
		return
	}
	err := a.endOtherSessions(r, u, func(ctx context.Context) (string, error) {
		return a.Accounts.NewGeneration(ctx, u.Username)
	})
	if errors.Is(err, errCredentialsUnchanged) {
		a.fail(w, r, err)
		return
	}
	if err != nil {
		// The other sessions are ended; this one may not hold the new
		// generation. Failing closed, as a password change does.
		a.logOutHere(ctx)
		a.failWith(w, r, err, "Logged out everywhere",
			"Your other sessions are logged out, but keeping this one failed on our side, so this browser was logged out too. Please log in again.")
		return
	}
	a.afterRevoke(w, r, u, "revoked-others")
}

// afterRevoke answers a revoke: htmx gets the list, a plain form a 303.
func (a *App) afterRevoke(w http.ResponseWriter, r *http.Request, u sessions.User, from string) {
	if !isHTMX(r) {
		to := "/sessions"
		if from != "" {
			to += "?from=" + from
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	p, err := a.sessionsView(r.Context(), u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p.Notice = sessionsNotice(from)
	w.Header().Set("HX-Trigger", views.EventSessionChanged)
	a.write(w, r, http.StatusOK, views.SessionList(p))
}

// changePassword handles POST /password: the current password, then the
// new one. The session gets a new token and every other session of the user
// is logged out, so whoever knew the old password is locked out.
func (a *App) changePassword(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u, ok := a.currentUser(ctx)
	if !ok {
		a.loginRequired(w, r)
		return
	}
	if !a.parseForm(w, r) {
		return
	}
	current, next := r.PostForm.Get("current"), r.PostForm.Get("new")
	var pf views.PasswordForm
	if current == "" {
		pf.Current.Error = "Enter your current password."
	}
	if err := accounts.CheckPassword(next); err != nil {
		pf.New.Error = fieldMessage(err)
	}
	if pf.Current.Error == "" && pf.New.Error == "" {
		tk, ok := a.passwordCheckAllowed(w, r, u, func(msg string) templ.Component {
			p, _ := a.sessionsView(ctx, u)
			p.Password = views.PasswordForm{Username: u.Username, Error: msg}
			return views.SessionsPage(p)
		})
		if !ok {
			return
		}
		_, err := a.Accounts.Authenticate(ctx, u.Username, current)
		a.checked(ctx, tk, err)
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
	err := a.endOtherSessions(r, u, func(ctx context.Context) (string, error) {
		return a.Accounts.SetPassword(ctx, u.Username, next)
	})
	if errors.Is(err, errCredentialsUnchanged) {
		a.fail(w, r, err)
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
	a.Log.Info("password changed", "user", u.Username)
	if isHTMX(r) {
		w.Header().Set("HX-Redirect", "/sessions?from=password")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, "/sessions?from=password", http.StatusSeeOther)
}

// errCredentialsUnchanged: ending the other sessions failed before the
// account was changed, so nothing was.
var errCredentialsUnchanged = errors.New("credentials unchanged")

// endOtherSessions ends every session of u but this one, after a password
// change or for "log out everywhere else". change gives the account a new
// credential generation (and maybe a new password): from then on every
// older session is logged out on its next request, on any instance (see
// accounts.NewGeneration). This session gets a new token carrying the new
// generation, so its own requests still in flight on the old token cannot
// take it down with the others. The index is then walked to delete the
// other keys at once and tell their open pages; a session missing from it
// is logged out all the same.
func (a *App) endOtherSessions(r *http.Request, u sessions.User, change func(context.Context) (string, error)) error {
	ctx := r.Context()
	gen, err := change(ctx)
	if err != nil {
		return errors.Join(errCredentialsUnchanged, err)
	}
	old := a.Sessions.Token(ctx)
	if err := a.renewToken(ctx); err != nil {
		return err
	}
	u.Gen = gen
	a.Sessions.Put(ctx, sessions.KeyUser, u)
	if err := a.indexLogin(r, u.Username, old); err != nil {
		return err
	}
	n, err := a.Index.RevokeOthers(ctx, u.Username, sessions.ID(a.Sessions.Token(ctx)))
	if errors.Is(err, sessionindex.ErrUnavailable) {
		return nil // no list to walk: the new generation alone logs the others out
	}
	if err != nil {
		return err
	}
	a.Log.Info("other sessions revoked", "user", u.Username, "count", n, "by", a.LogID(a.Sessions.Token(ctx)))
	return nil
}

func fieldMessage(err error) string {
	if fe, ok := errors.AsType[*accounts.FieldError](err); ok {
		return fe.Message
	}
	return err.Error()
}

// indexLogin records the request's session (just given a new token) in the
// user's index, in place of the token it replaced. It is called after
// every token renewal of a logged-in session.
func (a *App) indexLogin(r *http.Request, user, oldToken string) error {
	ctx := r.Context()
	token := a.Sessions.Token(ctx)
	now := time.Now().UnixMilli()
	oldID := ""
	if oldToken != "" {
		oldID = sessions.ID(oldToken)
	}
	e := sessionindex.Entry{
		Token:     token,
		Created:   now,
		LastSeen:  now,
		IP:        a.sessionClientIP(r),
		UserAgent: truncate(r.UserAgent(), 256),
		Instance:  a.Instance,
	}
	if err := a.Index.Add(ctx, user, e, oldID, a.Sessions.Deadline(ctx)); err != nil {
		return fmt.Errorf("index session %s: %w", a.LogID(token), err)
	}
	return nil
}

// unindex drops a session from its user's index (logout, or a login as
// someone else).
func (a *App) unindex(ctx context.Context, user, token string) error {
	if user == "" || token == "" {
		return nil
	}
	if err := a.Index.Remove(ctx, user, sessions.ID(token)); err != nil {
		return fmt.Errorf("unindex session %s: %w", a.LogID(token), err)
	}
	return nil
}

// sessionClientIP is the client address shown on the sessions page: the
// one clientIP finds (X-Forwarded-For only from -trusted-proxies).
func (a *App) sessionClientIP(r *http.Request) string {
	if ip := a.clientIP(r); ip.IsValid() {
		return ip.String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// indexPanelEntry is the user's session index for the "What's in Redis"
// panel, with every token cut short as the session key is.
func (a *App) indexPanelEntry(ctx context.Context, user string) (views.RedisEntry, bool, error) {
	key, ok := a.Index.Key(user)
	if !ok {
		return views.RedisEntry{}, false, nil
	}
	e, err := a.Inspector.Hash(ctx, key)
	if err != nil {
		return views.RedisEntry{}, false, fmt.Errorf("%s: %w", key, err)
	}
	if !e.Exists {
		return views.RedisEntry{}, false, nil
	}
	var fields map[string]map[string]any
	if err := json.Unmarshal(e.Value, &fields); err != nil {
		return views.RedisEntry{}, false, nil
	}
	var times []string
	for _, id := range slices.Sorted(maps.Keys(fields)) {
		f := fields[id]
		if tok, ok := f["token"].(string); ok && len(tok) > 6 {
			f["token"] = tok[:6] + "…"
		}
		times = append(times, epochTimes(id, f, "created", "last_seen"))
	}
	cut, err := json.Marshal(fields)
	if err != nil {
		return views.RedisEntry{}, false, nil
	}
	return views.RedisEntry{
		Key:    e.Key,
		Note:   "your sessions on every server (a hash: field = session id, a hash of the token; tokens cut here)",
		TTL:    e.TTL,
		Memory: e.Memory,
		Value:  inspect.Pretty(cut),
		Times:  times,
	}, true, nil
}

// epochTimes writes a field's epoch-millisecond times out readably:
// "3f2a…: created 1764590465123 = 2026-12-01 12:01:05 UTC, …".
func epochTimes(id string, f map[string]any, names ...string) string {
	var parts []string
	for _, name := range names {
		if ms, ok := f[name].(float64); ok {
			t := time.UnixMilli(int64(ms)).UTC()
			parts = append(parts, fmt.Sprintf("%s %d = %s", name, int64(ms), t.Format("2006-01-02 15:04:05 UTC")))
		}
	}
	return truncate(id, 8) + "…: " + strings.Join(parts, ", ")
}

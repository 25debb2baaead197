package handlers

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/a-h/templ"

	"github.com/sessionlab/sessionlab/internal/metrics"
	"github.com/sessionlab/sessionlab/internal/sessionindex"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/useragent"
	"github.com/sessionlab/sessionlab/views"
)

// sessionsPage handles GET /sessions: every live session of the current
// user, on every server, read from the user's index in one call.
func (a *App) sessionsPage(w http.ResponseWriter, r *http.Request, u sessions.User) {
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
	p, err := a.sessionsView(r, u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pf.Username = u.Username
	p.Notice, p.Password = notice, pf
	if isHTMX(r) && r.Header.Get("HX-Target") == views.IDSessionList {
		a.writeSessionList(w, r, p)
		return
	}
	status := http.StatusOK
	if pf.Current.Error != "" || pf.New.Error != "" || pf.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	a.renderForm(w, r, status, "Active sessions", views.SessionsPage(p))
}

func (a *App) sessionsView(r *http.Request, u sessions.User) (views.Sessions, error) {
	ctx := r.Context()
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
			ID:         e.ID,
			Device:     useragent.Parse(e.UserAgent).String(),
			IP:         e.IP,
			Created:    e.CreatedAt(),
			LastSeen:   e.LastSeenAt(),
			Instance:   e.Instance,
			Views:      e.Views,
			Unreadable: e.Unreadable,
			Current:    e.ID == current,
		})
		if e.ID == current {
			row := &p.Rows[len(p.Rows)-1]
			row.Holders = a.labHolders(labBrowserID(r), a.labOf(ctx))
			a.seenNow(r, u, row)
		}
	}
	// Most recently seen first, as the index lists them, with this
	// device's row where seenNow's "now" puts it.
	slices.SortStableFunc(p.Rows, func(x, y views.SessionRow) int { return y.LastSeen.Compare(x.LastSeen) })
	return p, nil
}

// seenNow records this request in the index entry of the session that asked
// for the list, when the entry is older than a second or names another
// instance: requests refresh "last seen" only every TouchEvery, and this
// device's row, shown on a page this instance serves, would otherwise say
// "3 min ago, served by b", which the Redis panel would then repeat.
func (a *App) seenNow(r *http.Request, u sessions.User, row *views.SessionRow) {
	ctx := r.Context()
	now := time.Now()
	if row.Instance == a.Instance && now.Sub(row.LastSeen) < time.Second {
		return
	}
	token := a.Sessions.Token(ctx)
	err := a.Ops.Touch(ctx, token, u.Username, now, sessions.EndsAt(now, a.Sessions.Deadline(ctx), a.Idle))
	if err != nil {
		// The row says what the index holds; the page is still right.
		a.Log.DebugContext(ctx, "sessions page: last seen not recorded", "session", a.LogID(token), "err", err)
		return
	}
	row.LastSeen, row.Instance = now, a.Instance
}

// revokeSession handles POST /sessions/{id}/revoke: the key is deleted at
// once, so the next request anywhere is logged out; open pages are told.
func (a *App) revokeSession(w http.ResponseWriter, r *http.Request, u sessions.User) {
	ctx := r.Context()
	id := r.PathValue("id")
	if id == sessions.ID(a.Sessions.Token(ctx)) {
		a.answer(w, r, failRevokeOwnSession)
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
	if revoked.Live > 0 {
		a.Metrics.SessionsEnded(metrics.EndRevoked, 1)
		a.Log.InfoContext(r.Context(), "session revoked", "user", u.Username, "by", a.LogID(a.Sessions.Token(ctx)))
	}
	a.dropBrowsers(ctx, revoked.Removed)
	a.afterRevoke(w, r, u, "")
}

// dropBrowsers takes revoked sessions off their computers' browsers lists,
// where each would say "logged in" for the rest of the window: the list of
// the address it logged in from and, when it last counted from another (a
// laptop that moved networks), that one's.
func (a *App) dropBrowsers(ctx context.Context, removed []sessionindex.Entry) {
	for _, e := range removed {
		addr := computerOf(e.IP)
		err := a.Ops.DropBrowser(ctx, e.ID, addr)
		if err == nil && e.CountedFrom != "" && e.CountedFrom != addr {
			err = a.Ops.DropBrowser(ctx, e.ID, e.CountedFrom)
		}
		if err != nil {
			// The revoke stands; the rows leave the lists with the window.
			a.Log.WarnContext(ctx, "revoked sessions left on the browsers list", "err", err)
			return
		}
	}
}

// revokeOthers handles POST /sessions/revoke-others: "log out everywhere else".
func (a *App) revokeOthers(w http.ResponseWriter, r *http.Request, u sessions.User) {
	ctx := r.Context()
	if !a.revokeOthersAllowed(w, r, u) {
		return
	}
	partway := failWords{"Not logged out elsewhere, logged out here",
		"No other session was logged out. But the session store (Redis) failed partway, after this browser's session had been given a new token, " +
			"so this browser is logged out. Log in again, then use “Log out everywhere else” again."}
	err := a.endOtherSessions(r, u, metrics.EndRevoked, partway, func(ctx context.Context) (string, error) {
		return a.Accounts.NewGeneration(ctx, u.Username)
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
		// The other sessions are ended; this one may not hold the new
		// generation. Failing closed, as a password change does.
		a.logOutHere(ctx)
		a.failWith(w, r, err, loggedOutEverywhereTitle, loggedOutEverywhereMessage)
		return
	}
	a.ifSaveFails(ctx, loggedOutEverywhereTitle, loggedOutEverywhereMessage)
	a.ifRevokedAsRenewed(ctx, failWords{loggedOutEverywhereTitle,
		"Your other sessions were logged out. But another of your sessions logged out everywhere else, or changed the password, " +
			"at the same moment, which ended this one as it started. Please log in again."})
	if isHTMX(r) {
		// This tab's token was renewed, so its page's live stream ends
		// with the old one, and an ended page reloads: swapped in, the
		// notice would vanish a second later. A page load under the new
		// token keeps it, as after a password change.
		w.Header().Set("HX-Redirect", "/sessions?from=revoked-others")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	a.afterRevoke(w, r, u, "revoked-others")
}

// "Log out everywhere else" that ended the others and could not keep this one.
const (
	loggedOutEverywhereTitle   = "Logged out everywhere"
	loggedOutEverywhereMessage = "Your other sessions are logged out, but keeping this one failed on our side, so this browser was logged out too. Please log in again."
)

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
	p, err := a.sessionsView(r, u)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p.Notice = sessionsNotice(from)
	a.writeSessionList(w, r, p)
}

// writeSessionList answers with the sessions table and, out of band, the
// Redis panel read right after it, so the page shows one moment. A click
// (Revoke, "Log out everywhere else": a POST) also brings its own trace, as
// a click on Count does; the list's refresh on a live update is no click,
// and the page's trace stays.
func (a *App) writeSessionList(w http.ResponseWriter, r *http.Request, p views.Sessions) {
	v, err := a.redisView(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if r.Method == http.MethodPost {
		a.write(w, r, http.StatusOK, templ.Join(views.SessionList(p), views.RedisPanelOOB(v), views.RedisTraceSlot(true)))
		return
	}
	a.write(w, r, http.StatusOK, templ.Join(views.SessionList(p), views.RedisPanelOOB(v)))
}

// errCredentialsUnchanged: ending the other sessions failed before the
// account was changed, so nothing was.
var errCredentialsUnchanged = errors.New("credentials unchanged")

// endOtherSessions ends every session of u but this one. This one gets a new
// token first: taking the old one (GETDEL) is what lets only one copy of a
// form sent twice go on (the other gets errRenewed, having changed nothing),
// and that a session ended meanwhile is not renewed (errEndedMeanwhile). The
// new token then replaces the old on the user's list, before the account
// changes: a revoke of this session that came after the take is found there
// (errEndedMeanwhile, nothing changed), and a change that fails leaves this
// session listed. change gives the account a new credential generation,
// which logs out every older session on its next request; this one holds
// it, so its own requests in flight cannot take it down. The index then ends
// the others at once. An error is errRenewed, errEndedMeanwhile, or
// errCredentialsUnchanged when the account was not changed. partway says
// what happened should the renewed session not be saved either (the old
// token is taken): "nothing was changed" would then be untrue.
func (a *App) endOtherSessions(r *http.Request, u sessions.User, cause string, partway failWords, change func(context.Context) (string, error)) error {
	ctx := r.Context()
	old := a.Sessions.Token(ctx)
	if err := a.renewToken(r, true, false); errors.Is(err, errRenewed) || errors.Is(err, errEndedMeanwhile) {
		return err
	} else if err != nil {
		a.listedOrDropped(r, u.Username, old)
		return errors.Join(errCredentialsUnchanged, err)
	}
	a.ifSaveFails(ctx, partway.title, partway.msg)
	if l := a.labOf(ctx); a.Lab && l.Seen != nil {
		// Copies of the old token are dead: the lab must not go on naming
		// the browsers that held them (as a lab switch's renewal forgets them).
		l.Seen = nil
		a.putLab(ctx, l)
	}
	if err := a.indexLogin(r, u.Username, old); errors.Is(err, errEndedMeanwhile) {
		return err
	} else if err != nil {
		notKept(ctx) // not listed, so not revocable
		return errors.Join(errCredentialsUnchanged, err)
	}
	gen, err := change(ctx)
	if err != nil {
		return errors.Join(errCredentialsUnchanged, err)
	}
	u.Gen = gen
	a.Sessions.Put(ctx, sessions.KeyUser, u)
	revoked, err := a.Index.RevokeOthers(ctx, u.Username, sessions.ID(a.Sessions.Token(ctx)))
	if errors.Is(err, sessionindex.ErrUnavailable) {
		return nil // no list to walk: the new generation alone logs the others out
	}
	if err != nil {
		return err
	}
	a.Metrics.SessionsEnded(cause, revoked.Live)
	a.Log.InfoContext(r.Context(), "other sessions revoked", "user", u.Username, "count", revoked.Live, "by", a.LogID(a.Sessions.Token(ctx)))
	a.dropBrowsers(ctx, revoked.Removed)
	return nil
}

// failUnchanged answers a credential change that failed before it changed
// the account (errCredentialsUnchanged): as fail, unless this browser's
// renewed session could not be kept, when "nothing was changed" would be
// untrue and title and msg say what happened.
func (a *App) failUnchanged(w http.ResponseWriter, r *http.Request, err error, partway failWords) {
	if st, ok := stateOf(r.Context()); !ok || !st.abandoned {
		a.fail(w, r, err)
		return
	}
	a.failWith(w, r, err, partway.title, partway.msg)
}

// failWords are a failure page's title and message in a request's own words.
type failWords struct{ title, msg string }

// listedOrDropped ends a renewal that failed after the old key was taken:
// the session, under its new token, goes on its user's list in place of the
// old one, or, when that fails too, is not kept (no key, no cookie), so no
// session the sessions page cannot list or revoke is left live.
func (a *App) listedOrDropped(r *http.Request, user, old string) {
	ctx := r.Context()
	if a.Sessions.Token(ctx) == old {
		return // not renewed: the old key and its entry stand
	}
	if err := a.indexLogin(r, user, old); err != nil {
		a.Log.WarnContext(ctx, "renewed session not kept: it could not be listed", "user", user, "err", err)
		notKept(ctx)
	}
}

package handlers

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"

	"github.com/a-h/templ"

	"github.com/sessionlab/sessionlab/internal/requestlog"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/useragent"
	"github.com/sessionlab/sessionlab/views"
)

// count handles GET /count, the tutorial's route: each view adds one inside
// Redis, so concurrent views on any instance are all counted.
func (a *App) count(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	st, _ := stateOf(ctx)
	if isHTMX(r) && st.isLost() {
		// Lost with an earlier process: the whole page says so.
		w.Header().Set("HX-Refresh", "true")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if isHTMX(r) && st.isStale() {
		a.sessionEnded(w, r)
		return
	}
	u, loggedIn := a.currentUser(ctx)
	if r.Method == http.MethodHead {
		// HEAD must change nothing: the page as it is, no view counted.
		a.render(w, r, http.StatusOK, "View counter", views.CountPage(views.Count{
			Views: a.Sessions.GetInt(ctx, sessions.KeyViews), User: u.Username, Origin: a.origin(ctx), Memory: a.InProcess}))
		return
	}
	visit := a.visit(r, loggedIn)
	var n int
	var list sessions.BrowserList
	token := a.Sessions.Token(ctx)
	// ended is the session this browser's cookie named that ended under
	// this count (expired or revoked since it was loaded): its row on the
	// browsers list is this browser's, which counts on in a new one.
	var ended string
	if token != "" {
		// nginx sends a count whose instance died (kill -9) to the next one
		// with the same id: the first may have counted it.
		if info := requestlog.From(ctx); info != nil && info.Proxied {
			visit.Request = info.ID
		}
		var incr int
		var browsers sessions.BrowserList
		var noted sessions.Lab
		var err error
		if c := st.countedFor(token); c != nil {
			// Counted as the session was read (countFirst).
			incr, browsers, noted, err = c.N, c.List, c.Noted, c.Err
		} else {
			incr, browsers, noted, err = a.Ops.IncrViews(ctx, token, u.Username, visit)
		}
		switch {
		case errors.Is(err, sessions.ErrEntryUnreadable):
			a.reindex(r, u.Username)
			err = nil
		case errors.Is(err, sessions.ErrCountRepeated):
			a.Log.InfoContext(ctx, "the proxy sent a count again that was counted already: answered with its count", "session", a.LogID(token))
			err = nil
		}
		switch {
		case errors.Is(err, sessions.ErrNoSession):
			// Expired or revoked since it was loaded.
			if isHTMX(r) {
				a.sessionEnded(w, r)
				return
			}
			if err := a.Sessions.Destroy(ctx); err != nil {
				a.fail(w, r, err)
				return
			}
			ended, token = token, ""
		case err != nil:
			// The count script was sent: if Redis stopped answering, it
			// may still run it, so the page must not say nothing changed.
			a.failAfterWrite(w, r, err, true)
			return
		default:
			n, list = incr, browsers
			if noted.Restart != nil || noted.Servers != nil {
				l := a.labOf(ctx)
				l.Restart, l.Servers = cmp.Or(noted.Restart, l.Restart), cmp.Or(noted.Servers, l.Servers)
				labNoted(ctx, l)
			}
		}
	}
	if token == "" {
		n = a.Sessions.GetInt(ctx, sessions.KeyViews) + 1
		a.Sessions.Put(ctx, sessions.KeyViews, n)
		var err error
		if token, err = a.newToken(ctx); errors.Is(err, errRenewed) {
			a.tokenRenewed(w, r)
			return
		} else if err != nil {
			a.fail(w, r, err)
			return
		}
		// One browser must not show as two (nor tick the lab's "Two
		// browsers"): the row of the session it had goes before the list is
		// read, as the save would take it off after (dropEndedRow).
		if ended != "" {
			if err := a.Ops.DropBrowser(ctx, sessions.ID(ended), visit.Addr); err != nil {
				a.Log.WarnContext(ctx, "ended session left on the browsers list", "session", a.LogID(ended), "err", err)
			}
		} else if st.isStale() && st.presented != "" {
			a.dropEndedRow(r, st)
		}
		// The same script counts the new session against its limit and,
		// with Redis, writes it: the save has nothing left to send.
		var first *sessions.Written
		if !a.InProcess {
			if first, err = a.captureFirstSave(ctx, st); err != nil {
				st.abandon()
				a.fail(w, r, err)
				return
			}
		}
		var wait time.Duration
		if list, wait, err = a.Ops.NewBrowser(ctx, token, n, visit, a.newSessionStep(r), first); err != nil {
			st.abandon() // the 503 says nothing was changed: it must be true
			a.fail(w, r, err)
			return
		} else if wait > 0 {
			st.abandon() // refused: nothing is stored
			a.tooManySessions(w, r, &errTooManySessions{wait})
			return
		}
		st.limitCounted()
		st.written = first
		// A new session's page has no live stream yet to tell its Redis panel.
		w.Header()[hdrHXTrigger] = sessionChanged
	}
	if st != nil {
		// For the header's lab progress.
		st.views, st.twoBrowsers = n, listsAnother(list)
	}
	if isHTMX(r) && header(r.Header, hdrHXTarget) == views.IDViewCount {
		// This browser's row and the lab's progress change with the counter.
		a.write(w, r, http.StatusOK, templ.Join(views.Counter(n), views.ThisViews(n, true), views.RedisTraceSlot(true),
			views.LabProgressLink(a.labProgress(ctx, a.labOf(ctx)), true)))
		return
	}
	a.render(w, r, http.StatusOK, "View counter", views.CountPage(views.Count{Views: n, User: u.Username, Origin: a.origin(ctx), Memory: a.InProcess,
		Browsers: a.browsers(visit.Addr, list, list.Self, nil), CookieDropped: a.secureCookieDropped(r)}))
}

// listsAnother says whether a count's list holds its own browser and
// another: /lab's "Two browsers" (labView).
func listsAnother(list sessions.BrowserList) bool {
	self, other := false, false
	for _, b := range list.Rows {
		if b.ID == list.Self {
			self = true
		} else {
			other = true
		}
	}
	return self && other
}

// secureCookieDropped is the server's guess that the browser drops this
// app's Secure cookie: it came over plain HTTP (not through a declared proxy,
// which may hold the TLS) to a host that is not localhost, with no cookie.
// The browser's own call is its secure context, as the lab shows it.
func (a *App) secureCookieDropped(r *http.Request) bool {
	if !a.Sessions.Cookie.Secure || r.TLS != nil || isLocalhost(r.Host) || a.fromTrustedProxy(r) {
		return false
	}
	_, err := r.Cookie(a.Sessions.Cookie.Name)
	return err != nil
}

// visit is who is counting, for the list of browsers of an address;
// loggedIn is currentUser's, which each caller has asked already.
func (a *App) visit(r *http.Request, loggedIn bool) sessions.Visit {
	return sessions.Visit{
		Addr:     a.computer(r),
		Device:   useragent.Parse(r.UserAgent()).String(),
		LoggedIn: loggedIn,
		Process:  a.ProcessID,
	}
}

// computer names the machine a request came from: its address, except that
// every loopback address (::1 or 127.0.0.1 by browser) is one computer.
func (a *App) computer(r *http.Request) string {
	ip := a.clientIP(r)
	if ip.IsLoopback() {
		return sessions.Loopback
	}
	return ip.String()
}

// computerOf is computer for an address recorded earlier (an index entry's).
func computerOf(addr string) string {
	if ip, err := netip.ParseAddr(addr); err == nil && ip.IsLoopback() {
		return sessions.Loopback
	}
	return addr
}

// browsers is an address's list as the page of session id shows it: no
// session IDs, its own row always there (own, when the list no longer holds
// it). A count's list names its session (Self): hashing the token again was
// a SHA-256 per count.
func (a *App) browsers(addr string, list sessions.BrowserList, id string, own *sessions.Browser) views.Browsers {
	b := views.Browsers{Addr: addr, ThisMachine: addr == sessions.Loopback, Window: sessions.BrowsersWindow, Now: time.Now(), Max: sessions.MaxBrowsers,
		Presence: !a.InProcess}
	row := func(x sessions.Browser) views.BrowserRow {
		// This browser's page is open: it is the one showing the list.
		return views.BrowserRow{Device: x.Device, LoggedIn: x.LoggedIn, Views: x.Views, CountedAt: x.CountedAt(), This: x.ID == id, Open: x.Open || x.ID == id}
	}
	b.Rows = make([]views.BrowserRow, 0, len(list.Rows)+1) // the rows and this browser's: one allocation, not five for 10
	listed := false
	for _, x := range list.Rows {
		b.Rows = append(b.Rows, row(x))
		listed = listed || x.ID == id
	}
	if !listed && own != nil && own.ID == id && b.Now.Sub(own.CountedAt()) < sessions.BrowsersWindow {
		b.Rows = append(b.Rows, row(*own))
	}
	b.More = max(list.Total-len(b.Rows), 0)
	return b
}

// newToken gives a session not stored yet its token now, so a script can name
// it; like saveSession it first checks that a login did not renew the cookie.
func (a *App) newToken(ctx context.Context) (string, error) {
	if renewed, err := a.renewedMeanwhile(ctx); err != nil {
		return "", err
	} else if renewed {
		return "", errRenewed
	}
	if err := a.Sessions.RenewToken(ctx); err != nil {
		return "", err
	}
	st, _ := stateOf(ctx)
	st.tokenIssued()
	return a.Sessions.Token(ctx), nil
}

package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/metrics"
	"github.com/sessionlab/sessionlab/internal/redistrace"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/static"
	"github.com/sessionlab/sessionlab/views"
)

// sessionState is what the middleware learned about the request's session,
// beyond what scs keeps. Handlers read it and change it through its methods.
type sessionState struct {
	// presented is the well-formed token the cookie named, live or not.
	presented string
	// seen is the session's last recorded activity.
	seen time.Time
	// stale: the request carried a session cookie, but no live session
	// answers to it (never issued, malformed, expired, revoked, renewed).
	stale bool
	// lost: with -store memory, presented names a session this process
	// never stored (lost with an earlier process, or another instance's).
	lost bool
	// unreadable: presented names a stored value that is not a session
	// (sessions.ErrUnreadable); this request has a new session instead.
	unreadable bool
	// unreadableAccount: the key of the session's account, whose stored
	// value is not an account (accounts.ErrUnreadable): it logged out.
	unreadableAccount string
	explained         bool // the page says why the session ended (see isEnded)
	// told: a whole page said the session ended (its banner, or the login
	// page's notice), so its answer expires the cookie (forgetEnded).
	told      bool
	created   bool // see tokenIssued
	abandoned bool // see abandon
	limited   bool // see limitCounted
	renewed   bool // see answeredRenewed
	// originAt: when this request recorded the session's origin (it
	// creates the session).
	originAt time.Time
	// views is the count this request made inside Redis (GET /count),
	// which the session as loaded does not hold yet (the header's lab progress).
	views int
	// revokedWords: what a credential change that was stored says should
	// another session's change end this one before it is kept
	// (errRevokedAsRenewed); the generic words would read as if it had not
	// happened.
	revokedWords failWords
	// endedRowDropped: the row of the ended session presented is off its
	// computer's browsers list (dropEndedRow).
	endedRowDropped bool
	// twoBrowsers: the count's list shows this browser and another, which
	// /lab records as the "Two browsers" step when it is next viewed; the
	// header's progress counts it now, as /lab would.
	twoBrowsers bool
	// lab is the session's lab as this request's own notes left it in the
	// store (the count script's moves, /lab's notes), which the session as
	// loaded does not hold: the header's progress says what /lab says.
	lab *sessions.Lab
	// checked is what loadAndSave read of a live session that passed its
	// checks, for pages to read again (see asChecked).
	checked checkedSession
	// counted is the count countFirst made of presented as it loaded it
	// (GET /count), for the handler to answer with; nil: none was made.
	counted *sessions.CheckedCount
	// written is the new session's value the count's script wrote
	// (captureFirstSave): its save sends it only if it changed since.
	written *sessions.Written
	// indexedFor is the user whose index this request added the session's
	// new token to (indexLogin): saving it then checks the entry is still there.
	indexedFor string
	// keptToken: a login kept the loaded token (-lab, renewal off), so
	// saving it checks that no renewal took that token meanwhile.
	keptToken bool
	// failTitle and failMessage are the handler's own words for its failure
	// (failWith), for the answer if saving the session then fails too.
	failTitle, failMessage string
}

// checkedSession is a live session as loadAndSave's checks left it: what
// pages read of it besides what they read once anyway.
type checkedSession struct {
	live     bool
	username string    // "" if nobody is logged in
	deadline time.Time // absolute
}

// asChecked is the session as loadAndSave checked it, while this request has
// not changed it: scs's status leaves Unmodified at the first change and never
// returns to it. Each scs read walks the context and boxes scs's key (an
// allocation), so one Status here stands for several reads.
func (a *App) asChecked(ctx context.Context) (checkedSession, bool) {
	st, ok := stateOf(ctx)
	if !ok || !st.checked.live || a.Sessions.Status(ctx) != scs.Unmodified {
		return checkedSession{}, false
	}
	return st.checked, true
}

// isStale: the cookie named no live session. Nil-safe, as are the others.
func (s *sessionState) isStale() bool { return s != nil && s.stale }

// isLost: the cookie named a session lost with an earlier process.
func (s *sessionState) isLost() bool { return s != nil && s.lost }

// isUnreadable: the cookie named a stored value that is not a session.
func (s *sessionState) isUnreadable() bool { return s != nil && s.unreadable }

// explainsEnd: the login page's ?from= says why the session ended (where
// sessionEnded sends a page), so no banner repeats it.
func explainsEnd(from string) bool { return from == "expired" || from == "account" }

// isEnded: the cookie named, well formed, a session that is not stored
// (or ended as this request checked it), and no page of this request says
// so already (the login page after a session ended, ?from=expired or
// ?from=account).
func (s *sessionState) isEnded() bool {
	return s != nil && s.stale && s.presented != "" && !s.lost && !s.unreadable && s.unreadableAccount == "" && !s.explained
}

// end records that the session ended while this request checked it.
func (s *sessionState) end() { s.stale = true }

// tell records that this whole page says the session ended, when it does:
// its banner (p), or the login page that says so already (explained).
func (s *sessionState) tell(p views.Page) {
	if s != nil && s.stale && (p.EndedSession != "" || p.UnreadableAccount != "" || s.explained) {
		s.told = true
	}
}

// tokenIssued records that the handler gave a new session its token early
// (newToken): saving it creates its key.
func (s *sessionState) tokenIssued() {
	if s != nil {
		s.created = true
	}
}

// abandon: the handler failed before a new session was worth keeping, so
// it is not written and no cookie is set.
func (s *sessionState) abandon() { s.abandoned = true }

// answeredRenewed reports whether this request was answered as one on a
// renewed token before (GET /count is: by its handler, then by the save).
func (s *sessionState) answeredRenewed() bool {
	if s == nil {
		return false
	}
	before := s.renewed
	s.renewed = true
	return before
}

// limitCounted: the handler's own script counted the new session against
// the limit on new anonymous sessions, so saving it does not count again.
func (s *sessionState) limitCounted() { s.limited = true }

type stateKey struct{}

func stateOf(ctx context.Context) (*sessionState, bool) {
	s, ok := ctx.Value(stateKey{}).(*sessionState)
	return s, ok
}

// tokenLen is the length of an scs token: 32 random bytes, base64url.
const tokenLen = 43

// validToken rejects cookies scs could not have issued before they reach Redis.
func validToken(t string) bool {
	if len(t) != tokenLen {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// loadAndSave loads the session, enforces its timeouts, and saves it before
// anything is sent, so a failed save is never a page claiming success (scs's
// LoadAndSave commits on the first Write). A read-only session is only
// touched, at most every TouchEvery.
func (a *App) loadAndSave(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h[hdrVary] = append(h[hdrVary], "Cookie")
		var token string
		var presented bool
		if c, err := r.Cookie(a.Sessions.Cookie.Name); err == nil {
			presented = true
			if validToken(c.Value) {
				token = c.Value
			}
		}
		// Every Redis command is recorded for the Redis panel, the load's GET
		// first, or the count that read the session instead (countFirst).
		traced, trace := redistrace.Start(r.Context())
		var counted *sessions.CheckedCount
		if token != "" && isCountRoute(r) {
			counted = a.countFirst(traced, r, token)
		}
		loadCtx := traced
		if counted != nil && counted.Raw != nil {
			loadCtx = sessions.WithFound(traced, token, counted.Raw)
		}
		ctx, err := a.Sessions.Load(loadCtx, token)
		unreadable := errors.Is(err, sessions.ErrUnreadable)
		if unreadable {
			// Left as it is (it may be evidence of what changed it), and
			// not saved over: the browser starts a new session, with a new
			// token, the first time it stores something.
			a.Log.WarnContext(traced, "session unreadable: a new one starts, the stored value is left as it is",
				"session", a.LogID(token), "err", err)
			ctx, err = a.Sessions.Load(traced, "")
		}
		if err != nil && counted != nil {
			// The count was sent first, and failed (else the load reads
			// what it read): its error says what the answer may claim.
			a.failAfterCount(w, r, fmt.Errorf("count session %s: %w", a.LogID(token), cmp.Or(counted.Err, err)))
			return
		}
		if err != nil {
			a.fail(w, r, fmt.Errorf("load session %s: %w", a.LogID(token), err))
			return
		}
		// Each scs call boxes its context key (an allocation), so the live
		// token and the user are asked once here for both checks.
		live := a.Sessions.Token(ctx)
		st := &sessionState{stale: presented && live == "", presented: token, unreadable: unreadable, counted: counted}
		st.explained = st.stale && r.URL.Path == "/login" && explainsEnd(r.URL.Query().Get("from"))
		st.lost = st.stale && token != "" && a.Issued.Lost(token)
		if st.stale && token != "" && !st.lost && !unreadable {
			// Logged out by an earlier request that could not say why (see
			// checkGeneration): this one may. A failed read is the plain
			// "ended" instead. Only a cookie naming no session pays for it.
			st.unreadableAccount, _ = a.Ops.AccountUnreadable(ctx, token)
		}
		if live != "" {
			u, hasUser := a.Sessions.Get(ctx, sessions.KeyUser).(sessions.User)
			ended, err := a.checkGeneration(ctx, st, live, u, hasUser)
			var deadline time.Time
			if err == nil && !ended {
				deadline, err = a.checkTimeouts(ctx, st, live, u, hasUser)
			}
			if err != nil && counted != nil {
				a.failAfterCount(w, r, err)
				return
			}
			if err != nil {
				a.fail(w, r, err)
				return
			}
			if !st.stale {
				st.checked = checkedSession{live: true, deadline: deadline}
				if hasUser {
					st.checked.username = u.Username
					a.countHints.note(live, u)
				}
			}
		}
		r = r.WithContext(context.WithValue(ctx, stateKey{}, st))

		bw := &bufferedWriter{w: w, header: http.Header{}, body: getBuffer(), save: func() error { return a.saveSession(w, r) },
			gzip: static.AcceptsGzip(r)}
		defer putBuffer(bw.body)
		next.ServeHTTP(bw, r)
		if bw.streaming {
			return
		}
		if err := a.saveSession(w, r); errors.Is(err, errRenewed) || errors.Is(err, errEndedMeanwhile) {
			a.notRenewed(w, r, err)
			return
		} else if errors.Is(err, errRevokedAsRenewed) {
			f := failRevokedAsRenewed
			if st.revokedWords.title != "" {
				// It changed credentials before that: the page says so.
				f.Title, f.Message = st.revokedWords.title, st.revokedWords.msg
			}
			a.refuse(w, r, f)
			return
		} else if tm, ok := errors.AsType[*errTooManySessions](err); ok {
			a.tooManySessions(w, r, tm)
			return
		} else if err != nil && st.failTitle != "" {
			// The handler changed something for good (and failed, or
			// succeeded): its words stay true, a generic "nothing was
			// changed" would not. The browser is not logged in: the
			// page's header must not say it is.
			a.logOutHere(r.Context())
			a.failWith(w, r, err, st.failTitle, st.failMessage)
			return
		} else if err != nil {
			a.fail(w, r, err)
			return
		}
		a.fillTrace(r, bw.body, trace)
		OneWrite(r, w, func() { bw.send(true) })
	})
}

// checkGeneration ends a logged-in session whose account changed its
// credential generation or is gone (accounts.NewGeneration), and says so;
// through the client-side cache it costs no round trip while nothing
// changes. token and u (hasUser: the session holds one) are the session's.
func (a *App) checkGeneration(ctx context.Context, st *sessionState, token string, u sessions.User, hasUser bool) (ended bool, err error) {
	if !hasUser || u.Username == "" {
		return false, nil
	}
	current, err := a.Accounts.Current(ctx, u.Username, u.Gen)
	if errors.Is(err, accounts.ErrUnreadable) {
		// A hand edit: no login to the account can be checked, so none
		// stays, and the value is left as it is for whoever changed it.
		a.Log.WarnContext(ctx, "session logged out: its account's stored value cannot be read, and is left as it is",
			"session", a.LogID(token), "user", u.Username, "err", err)
		st.unreadableAccount = accounts.Key(u.Username)
		// This request's answer may not say why (the Redis panel's, a
		// stream's): the page that later does reads it back.
		if err := a.Ops.MarkAccountUnreadable(ctx, token, st.unreadableAccount); err != nil {
			a.Log.WarnContext(ctx, "logout for an unreadable account not recorded: a later page may say only that the session ended",
				"session", a.LogID(token), "err", err)
		}
	} else if err != nil {
		return false, fmt.Errorf("check session %s: %w", a.LogID(token), err)
	} else if current {
		return false, nil
	} else {
		a.Log.InfoContext(ctx, "session revoked: its account's credentials changed", "session", a.LogID(token), "user", u.Username)
	}
	st.end()
	a.Metrics.SessionsEnded(metrics.EndCredentialsChanged, 1)
	if err := a.Sessions.Destroy(ctx); err != nil {
		return true, fmt.Errorf("destroy revoked session %s: %w", a.LogID(token), err)
	}
	return true, nil
}

// checkTimeouts ends a session past its idle or absolute deadline and
// refreshes "last seen" when it is older than TouchEvery. token, u and
// hasUser are as checkGeneration's; deadline is the absolute one.
func (a *App) checkTimeouts(ctx context.Context, st *sessionState, token string, u sessions.User, hasUser bool) (deadline time.Time, err error) {
	now := time.Now()
	deadline = a.Sessions.Deadline(ctx)
	st.seen = a.Sessions.GetTime(ctx, sessions.KeySeen)
	expired := now.After(sessions.EndsAt(st.seen, deadline, a.Idle))
	if !expired && (now.Sub(st.seen) >= a.TouchEvery || a.neverReused(ctx, st.seen, hasUser)) {
		err := a.Ops.Touch(ctx, token, u.Username, now, sessions.EndsAt(now, deadline, a.Idle))
		switch {
		case errors.Is(err, sessions.ErrNoSession):
			expired = true // revoked or renewed since we loaded it
		case err != nil:
			return deadline, err
		default:
			st.seen = now
		}
	}
	if !expired {
		return deadline, nil
	}
	// Redis expires the key itself; this covers the moment in between.
	a.Log.InfoContext(ctx, "session expired", "session", a.LogID(token))
	st.end()
	a.Metrics.SessionsEnded(metrics.EndExpired, 1)
	if err := a.Sessions.Destroy(ctx); err != nil {
		return deadline, fmt.Errorf("destroy expired session %s: %w", a.LogID(token), err)
	}
	return deadline, nil
}

// neverReused: an anonymous session last seen at its creation lives only
// sessions.FreshFor, so this first reuse must give it the idle timeout.
func (a *App) neverReused(ctx context.Context, seen time.Time, hasUser bool) bool {
	if hasUser {
		return false
	}
	o, ok := a.Sessions.Get(ctx, sessions.KeyOrigin).(sessions.Origin)
	return ok && o.At.Equal(seen)
}

// errEndedMeanwhile: the session ended (a logout or revoke elsewhere)
// after this request loaded it and before it could renew it.
var errEndedMeanwhile = errors.New("session ended by another request")

// errRevokedAsRenewed: another request revoked the session's new token
// between its index entry and its save (see sessionindex.KeepIfListed).
var errRevokedAsRenewed = errors.New("session revoked as it was renewed")

// errRenewed: the request carried a token that a login renewed meanwhile.
var errRenewed = errors.New("session token renewed by another request")

// renewedMeanwhile reports whether a login renewed this request's token a
// moment ago: its answer must set no cookie, or it would replace the new
// token and lose the login. Asked only on that rare path. Later than
// RenewalInFlight the browser never got the new token (that answer was
// lost), so the session is treated as ended: a reload could not help.
func (a *App) renewedMeanwhile(ctx context.Context) (bool, error) {
	st, ok := stateOf(ctx)
	if !ok || st.presented == "" {
		return false, nil
	}
	return a.Ops.RenewedInFlight(ctx, st.presented)
}

// answeredRenewed answers a request that arrived with no session when its
// token was renewed a moment ago (another tab's renewal took it), and
// reports whether it did: the session lives on under the new token, and
// nothing this request would do applies to it.
func (a *App) answeredRenewed(w http.ResponseWriter, r *http.Request) bool {
	renewed, err := a.renewedMeanwhile(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return true
	}
	if renewed {
		a.tokenRenewed(w, r)
	}
	return renewed
}

// notRenewed answers a request whose session another request renewed or
// ended before this one could renew it (renewToken); nothing was changed.
func (a *App) notRenewed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errEndedMeanwhile) {
		a.clientCaused(r, "request on a session ended meanwhile", nil)
		a.refuse(w, r, failEndedMeanwhile)
		return
	}
	a.tokenRenewed(w, r)
}

// tokenRenewed answers a request with a token a login renewed: nothing done,
// no cookie; htmx reloads the page with the new one.
func (a *App) tokenRenewed(w http.ResponseWriter, r *http.Request) {
	if st, _ := stateOf(r.Context()); !st.answeredRenewed() {
		a.clientCaused(r, "request on a renewed token", nil) // one request, counted once
	}
	if isHTMX(r) {
		w.Header().Set("HX-Refresh", "true")
	}
	a.refuse(w, r, failRenewed) // expected in a second tab after a login
}

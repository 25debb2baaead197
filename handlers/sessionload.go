package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/sessionlab/sessionlab/internal/redistrace"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// sessionState is what the middleware learned about the request's session,
// beyond what scs keeps.
type sessionState struct {
	// stale: the request carried a session cookie, but no live session
	// answers to it (never issued, malformed, expired, revoked, renewed).
	stale bool
	// presented is the well-formed token the cookie named, live or not.
	presented string
	// seen is the session's last recorded activity.
	seen time.Time
	// lost: with -store memory, presented names a session this process
	// never stored (lost with an earlier process, or another instance's).
	lost bool
	// created: the handler gave a new session its token early (newToken);
	// saving it creates its key.
	created bool
	// originAt: when this request recorded the session's origin (it
	// creates the session).
	originAt time.Time
	// unsaved: the handler failed before a new session was worth keeping;
	// it is not written and no cookie is set.
	unsaved bool
}

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

// loadAndSave loads the session (one GET), enforces the idle and absolute
// timeouts, and saves the session after the handler has run but before
// anything is sent: if the save fails, the user sees that it failed instead
// of a page claiming success. It replaces scs's LoadAndSave, which commits on
// the first Write and would mix an error into a success page.
//
// A session that is only read is never written back; its expiry is moved by
// a touch at most every TouchEvery, so a read costs one round trip.
func (a *App) loadAndSave(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Cookie")
		var token string
		var presented bool
		if c, err := r.Cookie(a.Sessions.Cookie.Name); err == nil {
			presented = true
			if validToken(c.Value) {
				token = c.Value
			}
		}
		// Every Redis command the request sends is recorded for the
		// Redis panel: the load's GET first.
		ctx, trace := redistrace.Start(r.Context())
		ctx, err := a.Sessions.Load(ctx, token)
		if err != nil {
			a.fail(w, r, fmt.Errorf("load session %s: %w", a.LogID(token), err))
			return
		}
		st := &sessionState{stale: presented && a.Sessions.Token(ctx) == "", presented: token}
		st.lost = st.stale && token != "" && a.Issued.Lost(token)
		if a.Sessions.Token(ctx) != "" {
			if err := a.checkGeneration(ctx, st); err != nil {
				a.fail(w, r, err)
				return
			}
		}
		if a.Sessions.Token(ctx) != "" {
			if err := a.checkTimeouts(ctx, st); err != nil {
				a.fail(w, r, err)
				return
			}
		}
		r = r.WithContext(context.WithValue(ctx, stateKey{}, st))

		bw := &bufferedWriter{w: w, header: http.Header{}, body: getBuffer(), save: func() error { return a.saveSession(w, r) }}
		defer putBuffer(bw.body)
		next.ServeHTTP(bw, r)
		if bw.streaming {
			return
		}
		if err := a.saveSession(w, r); errors.Is(err, errRenewed) {
			a.tokenRenewed(w, r)
			return
		} else if tm, ok := errors.AsType[*errTooManySessions](err); ok {
			a.tooManySessions(w, r, tm)
			return
		} else if err != nil {
			a.fail(w, r, err)
			return
		}
		a.fillTrace(r, bw.body, trace)
		bw.send(true)
	})
}

// fillTrace puts what the request sent to Redis, the save included, in
// place of the page's trace marker (if it has one): the page was rendered
// before the save, so it could not say.
func (a *App) fillTrace(r *http.Request, body *bytes.Buffer, trace *redistrace.Trace) {
	b := body.Bytes()
	// From the end: the slot sits in the panel after the page's content,
	// and a page is full of the '<' a forward search would stop at.
	i := bytes.LastIndex(b, traceMarker)
	if i < 0 {
		return
	}
	tail := getBuffer()
	defer putBuffer(tail)
	tail.Write(b[i+len(traceMarker):])
	body.Truncate(i)
	var cmds [8]views.TraceCommand
	t := views.Trace{Method: r.Method, Path: r.URL.Path, Commands: cmds[:0]}
	t.Dropped = trace.Each(func(c redistrace.Command) { t.Commands = append(t.Commands, views.TraceCommand(c)) })
	views.WriteTrace(body, t, a.Redis)
	body.Write(tail.Bytes())
}

var traceMarker = []byte(views.TraceMarker)

// checkGeneration ends a logged-in session whose account has changed its
// credential generation since the session logged in (a password change,
// "log out everywhere else") or is gone: Django's session auth hash, see
// accounts.NewGeneration. The account is read through rueidis's client-side
// cache, which Redis invalidates on every instance when the account
// changes, so the check costs no round trip while nothing changes.
func (a *App) checkGeneration(ctx context.Context, st *sessionState) error {
	u, ok := a.Sessions.Get(ctx, sessions.KeyUser).(sessions.User)
	if !ok || u.Username == "" {
		return nil
	}
	current, err := a.Accounts.Current(ctx, u.Username, u.Gen)
	if err != nil {
		return fmt.Errorf("check session %s: %w", a.LogID(a.Sessions.Token(ctx)), err)
	}
	if current {
		return nil
	}
	token := a.Sessions.Token(ctx)
	a.Log.Info("session revoked: its account's credentials changed", "session", a.LogID(token), "user", u.Username)
	st.stale = true
	if err := a.Sessions.Destroy(ctx); err != nil {
		return fmt.Errorf("destroy revoked session %s: %w", a.LogID(token), err)
	}
	return nil
}

// checkTimeouts ends a session past its idle or absolute deadline and
// refreshes "last seen" when it is older than TouchEvery.
func (a *App) checkTimeouts(ctx context.Context, st *sessionState) error {
	now := time.Now()
	token := a.Sessions.Token(ctx)
	deadline := a.Sessions.Deadline(ctx)
	st.seen = a.Sessions.GetTime(ctx, sessions.KeySeen)
	expired := now.After(sessions.EndsAt(st.seen, deadline, a.Idle))
	if !expired && (now.Sub(st.seen) >= a.TouchEvery || a.neverReused(ctx, st.seen)) {
		u, _ := a.Sessions.Get(ctx, sessions.KeyUser).(sessions.User)
		err := a.Ops.Touch(ctx, token, u.Username, now, sessions.EndsAt(now, deadline, a.Idle))
		switch {
		case errors.Is(err, sessions.ErrNoSession):
			expired = true // revoked or renewed since we loaded it
		case err != nil:
			return err
		default:
			st.seen = now
		}
	}
	if !expired {
		return nil
	}
	// Redis expires the key on its own; this check is the server's word on
	// it, and covers the moment between the two.
	a.Log.Info("session expired", "session", a.LogID(token))
	st.stale = true
	if err := a.Sessions.Destroy(ctx); err != nil {
		return fmt.Errorf("destroy expired session %s: %w", a.LogID(token), err)
	}
	return nil
}

// neverReused reports whether the session is anonymous and was last seen
// when it was created: its key then lives only freshFor, and this first
// reuse must give it the idle timeout.
func (a *App) neverReused(ctx context.Context, seen time.Time) bool {
	if _, ok := a.Sessions.Get(ctx, sessions.KeyUser).(sessions.User); ok {
		return false
	}
	o, ok := a.Sessions.Get(ctx, sessions.KeyOrigin).(sessions.Origin)
	return ok && o.At.Equal(seen)
}

// saveSession writes a changed session to Redis and sets the cookie.
func (a *App) saveSession(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	switch a.Sessions.Status(ctx) {
	case scs.Modified:
		st, _ := stateOf(ctx)
		if st != nil && st.unsaved {
			return nil
		}
		created := a.Sessions.Token(ctx) == "" || st != nil && st.created
		if a.Sessions.Token(ctx) == "" { // newToken has checked already
			if renewed, err := a.renewedMeanwhile(ctx); err != nil {
				return err
			} else if renewed {
				return errRenewed
			}
		}
		_, loggedIn := a.currentUser(ctx)
		fresh := created && !loggedIn // a new anonymous session
		if fresh {
			if err := a.newSessionAllowed(r); err != nil {
				return err
			}
		}
		if !a.Sessions.Exists(ctx, sessions.KeyOrigin) {
			// Recorded in the write that creates the session: no extra
			// round trip, and pages can show it outlived this process.
			a.recordOrigin(ctx)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		if st != nil && !st.originAt.IsZero() {
			now = st.originAt // created by this request: seen when created (see neverReused)
		}
		a.Sessions.Put(ctx, sessions.KeySeen, now)
		commitCtx := ctx
		if fresh {
			// Short-lived until it is used again (see freshFor), set by
			// the write that creates it.
			commitCtx = sessions.WithIdle(ctx, freshFor)
		}
		token, expiry, err := a.Sessions.Commit(commitCtx)
		if err != nil {
			return fmt.Errorf("save session %s: %w", a.LogID(token), err)
		}
		a.Issued.Add(token, expiry)
		if created {
			a.Log.Info("session created", "session", a.LogID(token))
		}
		a.Sessions.WriteSessionCookie(ctx, w, token, expiry)
	case scs.Destroyed:
		if st, _ := stateOf(ctx); st != nil && st.stale {
			// The session ended under this request; if that was a
			// renewal, the browser's cookie is already the new token.
			if renewed, err := a.renewedMeanwhile(ctx); err != nil {
				return err
			} else if renewed {
				return nil
			}
		}
		a.Sessions.WriteSessionCookie(ctx, w, "", time.Time{})
	default:
		return nil
	}
	// scs adds `no-cache="Set-Cookie"`; a response that sets a session
	// cookie must not be stored at all.
	w.Header().Set("Cache-Control", "no-store")
	return nil
}

// bufferedWriter holds a response until the session is saved. A handler that
// streams (server-sent events) flushes, which saves the session first and
// then passes writes straight through.
type bufferedWriter struct {
	w         http.ResponseWriter
	header    http.Header
	status    int
	body      *bytes.Buffer // from bufferPool, returned when the request ends
	save      func() error
	streaming bool
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if b.streaming {
		return
	}
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.streaming {
		return b.w.Write(p)
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// send copies the held response to the client. When it is the whole
// response (final), it goes with a Content-Length instead of chunked; a
// stream that starts with it must not have one.
func (b *bufferedWriter) send(final bool) {
	h := b.w.Header()
	for k, v := range b.header {
		switch {
		case k == "Cache-Control" && h.Get("Cache-Control") == "no-store":
		case k == "Vary" || k == "Set-Cookie":
			h[k] = append(h[k], v...) // keep the middleware's Vary: Cookie and session cookie
		default:
			h[k] = v
		}
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if final && b.status >= 200 && b.status != http.StatusNoContent && b.status != http.StatusNotModified && h.Get("Content-Length") == "" {
		h.Set("Content-Length", strconv.Itoa(b.body.Len()))
	}
	b.w.WriteHeader(b.status)
	_, _ = b.w.Write(b.body.Bytes())
}

// FlushError starts streaming: save the session, send what is held, flush.
func (b *bufferedWriter) FlushError() error {
	if !b.streaming {
		if err := b.save(); err != nil {
			return err
		}
		b.send(false)
		b.streaming = true
	}
	return http.NewResponseController(b.w).Flush()
}

func (b *bufferedWriter) Flush() { _ = b.FlushError() }

func (b *bufferedWriter) Unwrap() http.ResponseWriter { return b.w }

// errRenewed: the request carried a token that a login renewed meanwhile.
var errRenewed = errors.New("session token renewed by another request")

// renewedMeanwhile reports whether the token this request presented was
// renewed a moment ago (by a login in flight at the same time). The answer
// to such a request must set no session cookie: the browser already has, or
// is about to get, the new token, and a cookie set here would replace it and
// lose the login. It costs a round trip only on that rare path: a request
// about to create a session (or delete one that vanished) although it came
// with a cookie.
func (a *App) renewedMeanwhile(ctx context.Context) (bool, error) {
	st, ok := stateOf(ctx)
	if !ok || st.presented == "" {
		return false, nil
	}
	_, renewed, err := a.Ops.Renewed(ctx, st.presented)
	return renewed, err
}

// tokenRenewed answers a request that still carried a session's old token
// after a login renewed it: nothing was done and no cookie is set. htmx
// reloads the page, which then goes with the browser's new cookie.
func (a *App) tokenRenewed(w http.ResponseWriter, r *http.Request) {
	a.Log.Info("request on a renewed token", "method", r.Method, "path", r.URL.Path)
	if isHTMX(r) {
		w.Header().Set("HX-Refresh", "true")
	}
	a.problem(w, r, http.StatusConflict, "Session renewed",
		"You logged in a moment ago, and this request still carried your previous session, so nothing was done. Reload the page to go on.")
}

package handlers

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/sessionlab/sessionlab/internal/metrics"
	"github.com/sessionlab/sessionlab/internal/redistrace"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// Saving the session before anything is sent: loadAndSave (sessionload.go)
// holds the handler's response in a bufferedWriter, saves, then sends.

// saveSession writes a changed session to Redis and sets the cookie.
func (a *App) saveSession(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	switch a.Sessions.Status(ctx) {
	case scs.Modified:
		st, _ := stateOf(ctx)
		if st != nil && st.abandoned {
			return a.forgetEnded(w, r) // nothing is stored, but the page may have said the session ended
		}
		created := a.Sessions.Token(ctx) == "" || st != nil && st.created
		if a.Sessions.Token(ctx) == "" { // newToken has checked already
			if renewed, err := a.renewedMeanwhile(ctx); err != nil {
				return err
			} else if renewed {
				return errRenewed
			}
		}
		fresh := a.isNewAnonymous(ctx, st)
		if fresh && (st == nil || !st.limited) {
			if err := a.newSessionAllowed(r); err != nil {
				return err
			}
		}
		a.stampForSave(ctx, st)
		token, expiry, err := a.Sessions.Commit(a.commitContext(ctx, st, fresh))
		if err != nil {
			return fmt.Errorf("save session %s: %w", a.LogID(token), err)
		}
		if st != nil && st.keptToken {
			switch kept, err := a.Ops.KeepUnlessMoved(ctx, token); {
			case err != nil:
				return fmt.Errorf("save session %s: %w", a.LogID(token), err)
			case kept == sessions.KeptUndone:
				// Written back under an ID a renewal took before, which
				// another browser may hold: deleted, and listed nowhere.
				a.unindexKept(r, st.indexedFor, token)
				return errRenewed
			case kept == sessions.KeptEnded:
				a.unindexKept(r, st.indexedFor, token)
				return errEndedMeanwhile
			case kept == sessions.KeptCarried:
				// A renewal took the session after this write and carried it
				// on: its answer gives the browser the new token, which this
				// one must not overwrite with the dead one.
				return nil
			}
		}
		if st != nil && st.indexedFor != "" {
			// The cookie is not set yet: a session deleted here was never
			// the browser's.
			gen := "" // logged out here after it was indexed: no generation to hold
			if u, ok := a.currentUser(ctx); ok && u.Username == st.indexedFor {
				gen = u.Gen
			}
			listed, err := a.Index.KeepIfListed(ctx, st.indexedFor, token, gen)
			if err != nil {
				return fmt.Errorf("save session %s: %w", a.LogID(token), err)
			}
			if !listed && st.keptToken {
				// Off the list since KeepUnlessMoved: a renewal that took the
				// kept token moved the entry with it, carrying this login on,
				// or a logout took it off; only without either was it revoked.
				switch kept, err := a.Ops.KeepUnlessMoved(ctx, token); {
				case err == nil && kept == sessions.KeptCarried:
					return nil
				case err == nil && kept == sessions.KeptEnded:
					return errEndedMeanwhile
				}
			}
			if !listed {
				a.Log.InfoContext(ctx, "session revoked as it was renewed", "session", a.LogID(token), "user", st.indexedFor)
				a.Metrics.SessionsEnded(metrics.EndRevoked, 1)
				return errRevokedAsRenewed
			}
		}
		if st.isStale() && st.presented != "" && st.presented != token {
			// The browser's ended cookie is replaced now: the answers to its
			// requests sent before must not expire the new one (forgetEnded).
			if err := a.Ops.MarkReplaced(ctx, st.presented); err != nil {
				a.Log.WarnContext(ctx, "ended cookie replaced, not marked: a page sent meanwhile may expire the new one",
					"old", a.LogID(st.presented), "session", a.LogID(token), "err", err)
			}
			a.dropEndedRow(r, st)
		}
		a.Issued.Add(token, expiry)
		if st != nil && st.keptToken && !a.Sessions.Cookie.Persist && !a.Sessions.GetBool(ctx, sessions.KeyRememberMe) {
			// The browser holds this very cookie, a session cookie with no
			// expiry to move: sending it again could only overwrite the token
			// a renewal in another tab gave it meanwhile.
			w.Header()[hdrCacheControl] = noStore
			return nil
		}
		if created {
			a.Metrics.SessionCreated()
			a.Log.InfoContext(r.Context(), "session created", "session", a.LogID(token))
		}
		a.writeSessionCookie(ctx, w, token, expiry)
	case scs.Destroyed:
		if st, _ := stateOf(ctx); st.isStale() {
			// The session ended under this request; if that was a
			// renewal, the browser's cookie is already the new token.
			if renewed, err := a.renewedMeanwhile(ctx); err != nil {
				return err
			} else if renewed {
				return nil
			}
			// Ended by this request's checks: an answer that cannot say
			// why (the Redis panel's, a stream's, a redirect to the login
			// page) leaves the cookie for the page that does.
			return a.forgetEnded(w, r)
		}
		a.Sessions.WriteSessionCookie(ctx, w, "", time.Time{})
	default:
		return a.forgetEnded(w, r)
	}
	// scs adds `no-cache="Set-Cookie"`; a response that sets a session
	// cookie must not be stored at all.
	w.Header()[hdrCacheControl] = noStore
	return nil
}

// isNewAnonymous: the request's session is new (not stored yet) and
// nobody's (not logged in).
func (a *App) isNewAnonymous(ctx context.Context, st *sessionState) bool {
	created := a.Sessions.Token(ctx) == "" || st != nil && st.created
	_, loggedIn := a.currentUser(ctx)
	return created && !loggedIn
}

// stampForSave puts what every save of a changed session records: its
// origin if it has none, in the write that creates it (no extra round trip,
// and pages can show it outlived this process), and when it was last seen.
func (a *App) stampForSave(ctx context.Context, st *sessionState) {
	if !a.Sessions.Exists(ctx, sessions.KeyOrigin) {
		a.recordOrigin(ctx)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if st != nil && !st.originAt.IsZero() {
		now = st.originAt // created by this request: seen when created (see neverReused)
	}
	a.Sessions.Put(ctx, sessions.KeySeen, now)
}

// commitContext is ctx for the session's commit: a new anonymous session
// (fresh) is short-lived until it is used again (sessions.FreshFor), set by
// the write that creates it; one a script wrote already (captureFirstSave)
// is not sent again.
func (a *App) commitContext(ctx context.Context, st *sessionState, fresh bool) context.Context {
	if fresh {
		ctx = sessions.WithIdle(ctx, sessions.FreshFor)
	}
	if st != nil && st.written != nil {
		ctx = sessions.WithWritten(ctx, st.written)
	}
	return ctx
}

// captureFirstSave is the new session's value as saveSession would write it
// now, for the script that counts the session to write it in the same round
// trip (sessions.WithCapture); the save then sends nothing unless the value
// changed meanwhile.
func (a *App) captureFirstSave(ctx context.Context, st *sessionState) (*sessions.Written, error) {
	a.stampForSave(ctx, st)
	cctx, w := sessions.WithCapture(a.commitContext(ctx, st, a.isNewAnonymous(ctx, st)))
	if _, _, err := a.Sessions.Commit(cctx); err != nil {
		return nil, fmt.Errorf("encode new session: %w", err)
	}
	return w, nil
}

// unindexKept takes a kept token whose write was deleted off its user's list
// (KeepUnlessMoved); a failure leaves a dead entry, which the list drops.
func (a *App) unindexKept(r *http.Request, user, token string) {
	if err := a.unindex(r.Context(), user, token); err != nil {
		a.Log.WarnContext(r.Context(), "kept token undone: its index entry stays until the list drops it",
			"session", a.LogID(token), "err", err)
	}
}

// forgetEnded expires the cookie of a session that had ended, once a whole
// page said so (told): later pages of the browser are plain anonymous ones,
// not "your session ended" again. Not when a login or a new session replaced
// that cookie meanwhile (Ops.Replaced): its answer may be the browser's
// cookie by now, and this one would delete it.
func (a *App) forgetEnded(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	st, _ := stateOf(ctx)
	if st == nil || !st.told {
		return nil
	}
	if st.presented != "" {
		replaced, err := a.Ops.Replaced(ctx, st.presented)
		if err != nil || replaced {
			// Unknown (Redis failed just now): kept, the next page says it again.
			return nil
		}
		a.dropEndedRow(r, st)
	}
	a.Sessions.WriteSessionCookie(ctx, w, "", time.Time{})
	w.Header()[hdrCacheControl] = noStore
	return nil
}

// dropEndedRow takes the row of the session the browser's cookie named, which
// ended, off its computer's browsers list, once: the browser goes on in a new
// session (or none), and its ended one must not stay listed as another
// browser (nor tick the lab's "Two browsers").
func (a *App) dropEndedRow(r *http.Request, st *sessionState) {
	if st.endedRowDropped {
		return
	}
	st.endedRowDropped = true
	ctx := r.Context()
	if err := a.Ops.DropBrowser(ctx, sessions.ID(st.presented), a.computer(r)); err != nil {
		a.Log.WarnContext(ctx, "ended session left on the browsers list", "session", a.LogID(st.presented), "err", err)
	}
}

// bufferedWriter holds a response until the session is saved; a stream's
// first flush saves it and then passes writes through.
type bufferedWriter struct {
	w         http.ResponseWriter
	header    http.Header
	status    int
	body      *bytes.Buffer // from bufferPool, returned when the request ends
	save      func() error
	streaming bool
	gzip      bool // the client accepts a gzipped page
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

// send copies the held response to the client, with a Content-Length when it
// is the whole response (final), never for a stream.
func (b *bufferedWriter) send(final bool) {
	h := b.w.Header()
	for k, v := range b.header {
		switch {
		case k == hdrCacheControl && header(h, hdrCacheControl) == "no-store":
		case k == hdrVary || k == "Set-Cookie":
			h[k] = append(h[k], v...) // keep the middleware's Vary: Cookie and session cookie
		default:
			h[k] = v
		}
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	body := b.body.Bytes()
	if final && b.status >= 200 && b.status != http.StatusNoContent && b.status != http.StatusNotModified && header(h, hdrContentLength) == "" {
		if strings.HasPrefix(header(h, hdrContentType), "text/html") && header(h, hdrContentEncoding) == "" {
			zbuf := getBuffer()
			defer putBuffer(zbuf)
			body = compressed(h, b.gzip, body, zbuf)
		}
		h[hdrContentLength] = []string{strconv.Itoa(len(body))}
	}
	b.w.WriteHeader(b.status)
	_, _ = b.w.Write(body)
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

// fillTrace puts what the request sent to Redis, the save included, in place
// of the page's trace marker: the page was rendered before the save.
func (a *App) fillTrace(r *http.Request, body *bytes.Buffer, trace *redistrace.Trace) {
	b := body.Bytes()
	i := lastTraceMarker(b)
	if i < 0 {
		return
	}
	end, tail := len(b), i+len(traceMarker)
	var cmds [8]views.TraceCommand
	t := views.Trace{Method: r.Method, Path: r.URL.Path, Commands: cmds[:0], InProcess: a.InProcess}
	t.Dropped = trace.Each(func(c redistrace.Command) { t.Commands = append(t.Commands, views.TraceCommand(c)) })
	if isPanelRequest(r) {
		views.WriteOwnTrace(body, views.OwnPanel, t)
	} else {
		views.WriteTrace(body, t, a.Redis())
	}
	// The trace went after the page; the page's end follows it, and both
	// move back over the marker: no second buffer for the end, which cost
	// every request in flight a pooled buffer of a page's size.
	body.Write(body.Bytes()[tail:end])
	b = body.Bytes()
	body.Truncate(i + copy(b[i:], b[end:]))
}

var traceMarker = []byte(views.TraceMarker)

// lastTraceMarker is bytes.LastIndex(b, traceMarker), stepping back over a
// page's few '!': LastIndex hashed every byte after the slot (4 % of a page's
// instructions).
func lastTraceMarker(b []byte) int {
	for end := len(b); ; {
		i := lastBang(b[:end])
		if i < 1 {
			return -1
		}
		if bytes.HasPrefix(b[i-1:], traceMarker) {
			return i - 1
		}
		end = i
	}
}

// lastBang is bytes.LastIndexByte(b, '!'), eight bytes at a step: Go's
// LastIndexByte goes a byte at a time, and the slot is a kilobyte or two
// before a page's end (3.7 % of a page's instructions in process).
func lastBang(b []byte) int {
	const ones, highs, bangs = 0x0101010101010101, 0x8080808080808080, 0x2121212121212121
	i := len(b)
	for ; i >= 8; i -= 8 {
		x := binary.LittleEndian.Uint64(b[i-8:]) ^ bangs // a '!' byte is 0 in x
		if (x-ones)&^x&highs != 0 {
			break // a '!' among these eight
		}
	}
	for i--; i >= 0; i-- {
		if b[i] == '!' {
			return i
		}
	}
	return -1
}

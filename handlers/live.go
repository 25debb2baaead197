package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/sessionlab/sessionlab/internal/live"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// keepAliveEvery sends a comment on idle streams, so proxies and the
// browser see the connection is alive.
const keepAliveEvery = 25 * time.Second

// warnBefore is how long before a session's end its pages are warned.
const warnBefore = 2 * time.Minute

// liveEvents handles GET /live: a server-sent-event stream for the
// request's session. Events:
//
//	count     the session's new view count (data: the number)
//	revoked   the session was revoked or has ended (its pages go to /login)
//	sessions  the user's list of sessions changed (the sessions page reloads it)
//	idle      the session ends within warnBefore (data: the "stay signed in" warning)
//
// Messages come through the process's pub/sub hub, so a count made on any
// instance reaches every open tab on every instance. The stream ends when
// the client leaves, the session is revoked, or the server shuts down.
func (a *App) liveEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := a.Sessions.Token(ctx)
	if r.Method == http.MethodHead {
		// A HEAD answer is its headers: a stream would never end (nothing
		// written can fail) and would hold the client's connection.
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		return
	}
	if token == "" || a.Live == nil {
		// No session, nothing to hear about. Anything but 200 makes the
		// browser's EventSource give up instead of reconnecting at once.
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	id := sessions.ID(token)
	channels := []string{sessions.SessionChannel(id)}
	if u, ok := a.currentUser(ctx); ok {
		channels = append(channels, sessions.UserChannel(u.Username))
	}
	sub, err := a.Live.Subscribe(ctx, channels...)
	if errors.Is(err, live.ErrClosed) {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer a.Live.Unsubscribe(sub)

	// The server's read and write timeouts are for ordinary requests; a
	// stream lives as long as its page.
	rc := http.NewResponseController(w)
	if err := errors.Join(rc.SetReadDeadline(time.Time{}), rc.SetWriteDeadline(time.Time{})); err != nil {
		// A wrapper hides the connection: the server's timeouts will cut
		// the stream and the browser will reconnect.
		a.Log.Warn("live: cannot lift the stream's deadlines", "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ": stream open\n\n")
	if err := rc.Flush(); err != nil { // saves the session first
		return
	}

	keepAlive := time.NewTicker(keepAliveEvery)
	defer keepAlive.Stop()
	st, _ := stateOf(ctx)
	end := a.expiry(st.seen, a.Sessions.Deadline(ctx))
	warn := time.NewTimer(time.Until(end.Add(-warnBefore)))
	defer warn.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case m, ok := <-sub.C:
			if !ok {
				return // server shutting down
			}
			switch {
			case strings.HasPrefix(m.Payload, sessions.MsgCountPrefix):
				err = sendEvent(w, "count", strings.TrimPrefix(m.Payload, sessions.MsgCountPrefix))
			case m.Payload == sessions.MsgRevoked:
				_ = sendEvent(w, "revoked", "revoked")
				_ = rc.Flush()
				return
			case m.Payload == sessions.MsgSessions:
				err = sendEvent(w, "sessions", "changed")
			}
		case <-keepAlive.C:
			_, err = io.WriteString(w, ": keep-alive\n\n")
		case <-warn.C:
			var next time.Duration
			// The request's Redis budget was for opening the stream.
			next, err = a.warnIfEnding(redisconn.WithBudget(ctx, redisconn.RequestBudget), w, token)
			if next <= 0 {
				_ = rc.Flush()
				return
			}
			warn.Reset(next)
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

// warnIfEnding checks, when a session's end was due to come close, whether
// it still is (another tab may have used the session since): if so it sends
// the "stay signed in" warning, if it has ended it sends "revoked". It
// returns when to look again (0: the session is gone, end the stream).
func (a *App) warnIfEnding(ctx context.Context, w io.Writer, token string) (time.Duration, error) {
	b, found, err := a.Sessions.Store.Find(token)
	if err != nil {
		return time.Minute, nil // try again later; the stream itself is fine
	}
	var end time.Time
	if found {
		deadline, values, err := (sessions.Codec{}).Decode(b)
		if err == nil {
			seen, _ := values[sessions.KeySeen].(time.Time)
			end = a.expiry(seen, deadline)
		}
	}
	now := time.Now()
	if end.IsZero() || !now.Before(end) {
		return 0, sendEvent(w, "revoked", "ended")
	}
	if left := end.Sub(now); left > warnBefore {
		return left - warnBefore, nil
	}
	var buf bytes.Buffer
	if err := views.StaySignedInControl(views.StaySignedIn{IdleDeadline: end, Now: now, Pushed: true}).Render(ctx, &buf); err != nil {
		return 0, err
	}
	// Look again just after the end: then the page is sent to log in.
	return end.Sub(now) + time.Second, sendEvent(w, "idle", buf.String())
}

// sendEvent writes one server-sent event; every line of data gets its own
// "data:" field.
func sendEvent(w io.Writer, event, data string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "event: %s\n", event)
	for line := range strings.SplitSeq(data, "\n") {
		fmt.Fprintf(&b, "data: %s\n", line)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// liveStats handles GET /debug/live: how many event streams and Redis
// subscriptions this process holds open (they must not grow with reloads).
func (a *App) liveStats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	var s live.Stats
	if a.Live != nil {
		s = a.Live.Stats()
	}
	fmt.Fprintf(w, "streams %d\nchannels %d\n", s.Streams, s.Channels)
}

// staySignedIn handles POST /session/touch: it counts as activity, moving
// the idle deadline, and shows the new one.
func (a *App) staySignedIn(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := a.Sessions.Token(ctx)
	u, ok := a.currentUser(ctx)
	if !ok || token == "" {
		a.loginRequired(w, r)
		return
	}
	now := time.Now()
	end := a.expiry(now, a.Sessions.Deadline(ctx))
	err := a.Ops.Touch(ctx, token, u.Username, now, end)
	if errors.Is(err, sessions.ErrNoSession) {
		a.sessionEnded(w, r)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("HX-Trigger", "session-changed")
	if isHTMX(r) {
		a.write(w, r, http.StatusOK, templ.Join(
			views.StaySignedInControl(views.StaySignedIn{IdleDeadline: end, Now: now, Touched: true}),
			views.IdleDeadline(end, now, true)))
		return
	}
	http.Redirect(w, r, "/profile", http.StatusSeeOther)
}

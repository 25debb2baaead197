package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessionlab/sessionlab/internal/live"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// keepAliveEvery sends a comment on idle streams, so proxies and the
// browser see the connection is alive.
const keepAliveEvery = 25 * time.Second

// liveEvents handles GET /live: a server-sent-event stream for the
// request's session. Events:
//
//	views.SSECount     the session's new view count (data: the number)
//	views.SSEEnded     the session has ended: revoked, logged out, renewed or expired (its pages leave)
//	views.SSESessions  the user's list of sessions changed (the sessions page reloads it)
//	views.SSEIdle      the session ends within warnBefore (data: the "stay signed in" warning)
//	views.SSEBrowsers  a browser on this computer (this client address) counted (data: the list)
//	views.SSEHello     first on every stream: which process answered and whether the session is alive
//
// The page's script (static/live.js) passes the process it knows as
// ?process=: after an outage the hello says whether a new process answered
// and whether the session survived it. Without a session the stream is the
// hello alone.
//
// Messages come through the process's pub/sub hub, so a count made on any
// instance reaches every open tab on every instance. The stream ends when
// the client leaves, the session ends, or the server shuts down.
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
		// No session, nothing to hear about but who answered.
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-store")
		_ = a.sendHello(ctx, w, r, false)
		return
	}
	id := sessions.ID(token)
	addr := a.clientIP(r).String()
	channels := []string{sessions.SessionChannel(id), sessions.BrowsersChannel(addr)}
	if u, ok := a.currentUser(ctx); ok {
		channels = append(channels, sessions.UserChannel(u.Username))
	}
	sub, err := a.Live.Subscribe(ctx, channels...)
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
		a.Log.WarnContext(r.Context(), "live: cannot lift the stream's deadlines", "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, ": stream open\n\n")
	// The hello carries the count as stored now: a page that was away (an
	// outage, a hidden tab) catches up.
	if err := a.sendHello(ctx, w, r, true); err != nil {
		return
	}
	// So does the list of browsers on this computer: counts made before
	// this stream listened were published to nobody here.
	if list, err := a.Ops.Browsers(ctx, addr); err != nil {
		a.Log.InfoContext(r.Context(), "live: cannot read the browsers list", "err", err)
	} else if len(list) > 0 && a.sendBrowserList(ctx, w, addr, list, token) != nil {
		return
	}
	if err := rc.Flush(); err != nil { // saves the session first
		return
	}

	keepAlive := time.NewTicker(keepAliveEvery)
	defer keepAlive.Stop()
	st, _ := stateOf(ctx)
	end := sessions.EndsAt(st.seen, a.Sessions.Deadline(ctx), a.Idle)
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
				err = sendEvent(w, views.SSECount, strings.TrimPrefix(m.Payload, sessions.MsgCountPrefix))
			case m.Payload == sessions.MsgEnded:
				_ = sendEvent(w, views.SSEEnded, "ended")
				_ = rc.Flush()
				return
			case m.Payload == sessions.MsgSessions:
				err = sendEvent(w, views.SSESessions, "changed")
			case strings.HasPrefix(m.Payload, sessions.MsgBrowsersPrefix):
				err = a.sendBrowsers(ctx, w, addr, strings.TrimPrefix(m.Payload, sessions.MsgBrowsersPrefix), token)
			}
		case <-sub.Resync:
			var ended bool
			ended, err = a.catchUp(w, token)
			if ended {
				_ = rc.Flush()
				return
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

// catchUp brings a page up to date after its subscription was re-opened
// (a Redis hiccup), since what was published meanwhile never came: the
// session's current count, and a nudge to reload the list of sessions. A
// session gone meanwhile ends the stream (ended). If Redis cannot be read
// yet, the page keeps what it has; the next count brings it up to date.
func (a *App) catchUp(w io.Writer, token string) (ended bool, err error) {
	b, found, err := a.Sessions.Store.Find(token)
	if err != nil {
		a.Log.Info("live: cannot catch up after a re-subscription", "session", a.LogID(token), "err", err)
		return false, nil
	}
	if !found {
		return true, sendEvent(w, views.SSEEnded, "ended")
	}
	_, values, err := a.Sessions.Codec.Decode(b)
	if err != nil {
		return false, nil
	}
	n, _ := values[sessions.KeyViews].(int)
	if err := sendEvent(w, views.SSECount, strconv.Itoa(n)); err != nil {
		return false, err
	}
	return false, sendEvent(w, views.SSESessions, "changed")
}

// warnIfEnding checks, when a session's end was due to come close, whether
// it still is (another tab may have used the session since): if so it sends
// the "stay signed in" warning, if it has ended it sends views.SSEEnded. It
// returns when to look again (0: the session is gone, end the stream).
func (a *App) warnIfEnding(ctx context.Context, w io.Writer, token string) (time.Duration, error) {
	times, err := a.Ops.Times(ctx, token)
	var end time.Time // zero: the session is gone
	switch {
	case errors.Is(err, sessions.ErrNoSession):
	case err != nil:
		return time.Minute, nil // try again later; the stream itself is fine
	default:
		end = times.End(a.Idle)
	}
	now := time.Now()
	if end.IsZero() || !now.Before(end) {
		return 0, sendEvent(w, views.SSEEnded, "expired")
	}
	if left := end.Sub(now); left > warnBefore {
		return left - warnBefore, nil
	}
	var buf bytes.Buffer
	if err := views.StaySignedInControl(views.StaySignedIn{IdleDeadline: end, Now: now, WarnBefore: warnBefore, Pushed: true}).Render(ctx, &buf); err != nil {
		return 0, err
	}
	// Look again just after the end: then the page is sent to log in.
	return end.Sub(now) + time.Second, sendEvent(w, views.SSEIdle, buf.String())
}

// sendHello writes the stream's first event, views.SSEHello.
func (a *App) sendHello(ctx context.Context, w io.Writer, r *http.Request, session bool) error {
	h := views.Hello{Process: a.process(), Previous: knownProcess(r), Session: session,
		Memory: a.InProcess, Views: a.Sessions.GetInt(ctx, sessions.KeyViews)}
	var buf bytes.Buffer
	if err := views.LiveHello(h).Render(ctx, &buf); err != nil {
		return err
	}
	return sendEvent(w, views.SSEHello, buf.String())
}

// knownProcess is the process id the page knew (?process=), if it looks
// like one.
func knownProcess(r *http.Request) string {
	p := r.URL.Query().Get("process")
	if len(p) > 16 {
		return ""
	}
	for _, c := range p {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return ""
		}
	}
	return p
}

// sendBrowsers renders a published list of an address's browsers for one
// stream's session (its own row marked) and sends it. A list that does not
// parse is skipped: the next count sends a new one.
func (a *App) sendBrowsers(ctx context.Context, w io.Writer, addr, payload, token string) error {
	list, err := sessions.ParseBrowsers(payload)
	if err != nil {
		a.Log.WarnContext(ctx, "live: bad browsers message", "err", err)
		return nil
	}
	return a.sendBrowserList(ctx, w, addr, list, token)
}

// sendBrowserList sends an address's list, rendered for one stream's
// session.
func (a *App) sendBrowserList(ctx context.Context, w io.Writer, addr string, list []sessions.Browser, token string) error {
	var buf bytes.Buffer
	if err := views.BrowsersList(a.browsers(addr, list, token)).Render(ctx, &buf); err != nil {
		return err
	}
	return sendEvent(w, views.SSEBrowsers, buf.String())
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

package handlers

import (
	"bytes"
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/live"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistrace"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

const (
	// keepAliveEvery keeps idle streams alive for proxies, and finds a client
	// gone without a word by the write.
	keepAliveEvery = 25 * time.Second
	// streamWriteTimeout drops a client that has not taken its events by then
	// (its page reconnects and catches up): an unread socket holds nothing.
	streamWriteTimeout = 5 * time.Second
	// browsersEvery: at most one browsers list a second per stream, or a class
	// of 200 behind one NAT would render hundreds of thousands a minute.
	browsersEvery = time.Second
	// maxUnsent drops a client that leaves this much unread, even while the
	// kernel's send buffer (up to megabytes) still takes every write.
	maxUnsent = 64 << 10
)

// liveEvents handles GET /live: the session's event stream (the events are
// views.SSE*; without a session, the hello alone). live.js passes the process
// it knows as ?process=; past a bound on open streams the answer is 429.
func (a *App) liveEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	token := a.Sessions.Token(ctx)
	if r.Method == http.MethodHead {
		// A HEAD answer is its headers: a stream would never end.
		return
	}
	if token == "" || a.Live == nil {
		if hello, err := a.hello(ctx, r, false); err == nil {
			_ = sendEvent(w, views.SSEHello, hello)
		}
		return
	}
	s, err := a.openStream(w, r, token)
	if refused, ok := errors.AsType[*errStreamRefused](err); ok {
		a.streamRefused(w, r, refused)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer s.close()
	err = s.start()
	if err == nil {
		err = s.sendOwn()
	}
	if err == nil {
		err = s.loop()
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.reset()
	case s.stopped() && s.endedFor == endedForRoom:
		s.sayMadeRoom()
	}
}

// stopped reports whether endFor ran.
func (s *stream) stopped() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// stream is one open /live response: an event loop turning pub/sub messages
// and timers into events, each written with its own deadline.
type stream struct {
	a     *App
	ctx   context.Context // the request's: its session, its trace
	r     *http.Request
	w     http.ResponseWriter
	rc    *http.ResponseController
	token string
	addr  string
	// limitAddr is what the per-address bound counts: the address as the
	// throttles count it (an IPv6 client by its /64), one for loopback.
	limitAddr string
	user      sessions.User // Username "" for an anonymous session
	sub       *live.Sub
	conn      net.Conn // the TCP connection, to see what the client left unread; nil if unknown

	browsers     string      // the latest browsers list not sent yet ("" none)
	browsersSent time.Time   // when the last one was
	browsersDue  *time.Timer // sends browsers when it fires; nil when none is due

	// own is this session's row as last listed, shown even by a list that
	// newer browsers pushed it out of.
	own *sessions.Browser
	// labNews is the last views.SSELab news of the list sent: a list that
	// changed only who has a page open is no news for /lab.
	labNews string
	// browsersShown is the last browsers list sent, as rendered: the list
	// start sends comes back as its own PageChanged's message.
	browsersShown string

	// sentViews is the highest count sent, the hello's first: a catch-up
	// reads on another connection, so older published counts may arrive
	// after it.
	sentViews int

	// seq is the stream's place in line among all admitted, place its
	// element in its address's list (openStreams, under its lock).
	seq   uint64
	place *list.Element

	stopOnce sync.Once
	stop     chan struct{} // closed by endFor
	endedFor endCause      // why stop was closed; read only after it was
}

// endCause is why the server ended a stream.
type endCause int

const (
	endedAtShutdown endCause = iota + 1
	endedForRoom             // another address's stream took its place
)

// openStream admits a stream within the bounds (errStreamRefused past one)
// and subscribes it to its session's, address's and user's channels.
func (a *App) openStream(w http.ResponseWriter, r *http.Request, token string) (*stream, error) {
	ctx := r.Context()
	s := &stream{a: a, ctx: ctx, r: r, w: w, rc: http.NewResponseController(w), token: token,
		addr: a.computer(r), conn: tcpConn(r), stop: make(chan struct{})}
	s.limitAddr = streamSubject(a.clientIP(r))
	s.user, _ = a.currentUser(ctx)
	madeRoom, open, err := a.streams.admit(s, a.streamLimits())
	if e, ok := errors.AsType[*errStreamRefused](err); ok {
		a.tallyStreamRefused(s, e)
	}
	if err != nil {
		return nil, err
	}
	if madeRoom {
		a.tallyStreamEndedForRoom(s, open)
	}
	channels := []string{sessions.SessionChannel(sessions.ID(token)), sessions.BrowsersChannel(s.addr)}
	if s.user.Username != "" {
		channels = append(channels, sessions.UserChannel(s.user.Username))
	}
	sub, err := a.Live.Subscribe(ctx, channels...)
	if err != nil {
		a.streams.remove(s)
		return nil, err
	}
	s.sub = sub
	return s, nil
}

// close unsubscribes and gives the stream's place back; then the address's
// other pages hear whether this browser still has a page open.
func (s *stream) close() {
	s.a.Live.Unsubscribe(s.sub)
	s.a.streams.remove(s)
	if _, err := s.a.Ops.PageChanged(redisconn.WithBudget(context.WithoutCancel(s.ctx), redisconn.RequestBudget), s.token, s.addr); err != nil {
		s.a.Log.InfoContext(s.ctx, "live: cannot tell the other pages this one closed", "err", err)
	}
}

// reset drops the connection of a client that did not take its events:
// a reset, so the kernel does not go on holding what was queued for it.
func (s *stream) reset() {
	conn, _, err := s.rc.Hijack()
	if err != nil {
		return // not HTTP/1 (a proxy's HTTP/2): the server closes it
	}
	for c := conn; c != nil; {
		if tcp, ok := c.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
			break
		}
		// A wrapper (TLS, oneWriteConn) says what it wraps, as tls.Conn does.
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		c = w.NetConn()
	}
	_ = conn.Close()
}

// endFor stops the stream (at shutdown, or to make room): a write under way
// fails within endGrace, which lets an idle stream send its last chunk, so
// the browser sees an end, not ERR_INCOMPLETE_CHUNKED_ENCODING. The first
// cause stays.
func (s *stream) endFor(why endCause) {
	s.stopOnce.Do(func() {
		s.endedFor = why
		close(s.stop)
		_ = s.rc.SetWriteDeadline(time.Now().Add(endGrace))
	})
}

// endGrace: how long a stream being ended may still write its last chunk.
const endGrace = 250 * time.Millisecond

// start sends the headers, the hello with the count as stored now and the
// browsers list: what was published before this stream listened reached nobody.
func (s *stream) start() error {
	// A stream lives as long as its page; every write has its own deadline.
	if err := s.rc.SetReadDeadline(time.Time{}); err != nil {
		// A wrapper hides the connection: the server's timeouts will cut
		// the stream and the browser will reconnect.
		s.a.Log.WarnContext(s.ctx, "live: cannot lift the stream's read deadline", "err", err)
	}
	s.w.Header().Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	// The hello carries the count as stored (hello reads the same value): a
	// catch-up that finds it unchanged has no news for the page.
	s.sentViews = s.a.Sessions.GetInt(s.ctx, sessions.KeyViews)
	hello, err := s.a.hello(s.ctx, s.r, true)
	if err != nil {
		return err
	}
	if err := s.send(views.SSEHello, hello); err != nil {
		return err
	}
	// The address's other pages hear that this browser has a page open.
	list, err := s.a.Ops.PageChanged(s.redis(), s.token, s.addr)
	if err != nil && clientGone(s.r) {
		s.a.clientCaused(s.r, "client gone", err)
		return err
	}
	if err != nil {
		s.a.Log.InfoContext(s.ctx, "live: cannot read the browsers list", "err", err)
		return nil
	}
	if len(list.Rows) == 0 {
		return nil
	}
	return s.sendBrowsers(list)
}

// sendOwn lists what the stream sent to Redis as it opened, for the foot of
// the panel: MONITOR prints it among the page's commands.
func (s *stream) sendOwn() error {
	var cmds [8]views.TraceCommand
	t := views.Trace{Method: s.r.Method, Path: s.r.URL.Path, Commands: cmds[:0]}
	t.Dropped = redistrace.From(s.ctx).Each(func(c redistrace.Command) { t.Commands = append(t.Commands, c) })
	var b bytes.Buffer
	views.WriteOwnTrace(&b, views.OwnLive, t)
	return s.send(views.SSEOwn, b.String())
}

// loop turns what the stream hears into events until the client leaves, the
// session ends, a write fails or the server shuts down.
func (s *stream) loop() error {
	keepAlive := time.NewTicker(cmp.Or(s.a.liveKeepAlive, keepAliveEvery))
	defer keepAlive.Stop()
	st, _ := stateOf(s.ctx)
	end := sessions.EndsAt(st.seen, s.a.Sessions.Deadline(s.ctx), s.a.Idle)
	warn := time.NewTimer(time.Until(end.Add(-sessions.WarnBefore)))
	defer warn.Stop()
	defer func() {
		if s.browsersDue != nil {
			s.browsersDue.Stop()
		}
	}()
	for {
		var done bool
		var err error
		var browsersDue <-chan time.Time
		if s.browsersDue != nil {
			browsersDue = s.browsersDue.C
		}
		select {
		case <-s.ctx.Done():
			return nil
		case <-s.stop:
			return nil
		case m, ok := <-s.sub.C:
			if !ok {
				return nil // the hub closed: the server is shutting down
			}
			done, err = s.message(m)
		case <-s.sub.Resync:
			// What is queued is older than the state catchUp reads: first.
			if done, err = s.drain(); !done && err == nil {
				done, err = s.catchUp()
			}
		case <-browsersDue:
			s.browsersDue = nil
			err = s.sendLatestBrowsers()
		case <-keepAlive.C:
			// A session that ended with no message saying so ends here: its
			// key deleted or edited by hand, or its credentials changed while
			// it was missing from the index.
			if done, err = s.sessionGone(); !done && err == nil {
				if done, err = s.credentialsChanged(); !done && err == nil {
					err = s.write([]byte(": keep-alive\n\n"))
				}
			}
		case <-warn.C:
			var next time.Duration
			next, err = s.warnIfEnding()
			done = next <= 0
			warn.Reset(next)
		}
		if done || err != nil {
			return err
		}
	}
}

// message sends the event for one published message; done: the session
// has ended and the stream with it.
func (s *stream) message(m live.Message) (done bool, err error) {
	switch p := m.Payload; {
	case strings.HasPrefix(p, sessions.MsgCountPrefix):
		n, err := strconv.Atoi(strings.TrimPrefix(p, sessions.MsgCountPrefix))
		if err != nil {
			s.a.Log.WarnContext(s.ctx, "live: bad count message", "err", err)
			return false, nil
		}
		if n < s.sentViews {
			return s.countLowered()
		}
		return false, s.sendCount(n)
	case p == sessions.MsgEnded:
		return true, s.send(views.SSEEnded, "ended")
	case p == sessions.MsgLab:
		return false, s.send(views.SSELab, views.LabNewsRecord)
	case p == sessions.MsgSessions:
		if done, err := s.credentialsChanged(); done || err != nil {
			return done, err
		}
		return false, s.send(views.SSESessions, "changed")
	case strings.HasPrefix(p, sessions.MsgBrowsersPrefix):
		s.browsers = strings.TrimPrefix(p, sessions.MsgBrowsersPrefix)
		if s.browsersDue != nil {
			return false, nil // the latest goes when it is due
		}
		if wait := browsersEvery - time.Since(s.browsersSent); wait > 0 {
			s.browsersDue = time.NewTimer(wait)
			return false, nil
		}
		return false, s.sendLatestBrowsers()
	}
	return false, nil
}

// sendLatestBrowsers sends the latest browsers list (see browsersEvery); one
// that does not parse is skipped, as the next count sends another.
func (s *stream) sendLatestBrowsers() error {
	payload := s.browsers
	s.browsers, s.browsersSent = "", time.Now()
	if payload == "" {
		return nil
	}
	list, err := sessions.ParseBrowsers(payload)
	if err != nil {
		s.a.Log.WarnContext(s.ctx, "live: bad browsers message", "err", err)
		return nil
	}
	return s.sendBrowsers(list)
}

// drain sends the events of the messages already queued.
func (s *stream) drain() (done bool, err error) {
	for {
		select {
		case m, ok := <-s.sub.C:
			if !ok {
				return true, nil
			}
			if done, err := s.message(m); done || err != nil {
				return done, err
			}
		default:
			return false, nil
		}
	}
}

// credentialsChanged ends a stream whose session lost its account's
// credential generation, as its next request would be; if Redis cannot say,
// it asks again at the next keep-alive. It reads Redis, not the cache: the
// message that sent it here can outrun the cache's invalidation.
func (s *stream) credentialsChanged() (done bool, err error) {
	if s.user.Username == "" {
		return false, nil
	}
	current, err := s.a.Accounts.CurrentInRedis(s.redis(), s.user.Username, s.user.Gen)
	if errors.Is(err, accounts.ErrUnreadable) {
		return true, s.send(views.SSEEnded, "ended") // as its next request would be logged out
	}
	if err != nil || current {
		return false, nil
	}
	return true, s.send(views.SSEEnded, "ended")
}

// sessionGone ends a stream whose session's key went, or holds no session,
// without a message (a hand edit): its next request would say it ended. If
// Redis cannot say, it asks again at the next keep-alive.
func (s *stream) sessionGone() (done bool, err error) {
	_, err = s.a.Ops.Times(s.redis(), s.token)
	if errors.Is(err, sessions.ErrNoSession) || sessions.IsWrongType(err) {
		return true, s.send(views.SSEEnded, "ended")
	}
	return false, nil
}

// catchUp sends the current count and a nudge to reload the sessions list
// after messages were lost (a resubscribe, a full queue); a session gone ends
// the stream. If Redis cannot be read yet, the next count catches up.
func (s *stream) catchUp() (done bool, err error) {
	t, err := s.a.Ops.Times(s.redis(), s.token)
	switch {
	case errors.Is(err, sessions.ErrNoSession):
		return true, s.send(views.SSEEnded, "ended")
	case err != nil:
		s.a.Log.InfoContext(s.ctx, "live: cannot catch up", "session", s.a.LogID(s.token), "err", err)
		return false, nil
	}
	if done, err := s.credentialsChanged(); done || err != nil {
		return done, err
	}
	if err := s.sendCount(t.Views); err != nil {
		return false, err
	}
	return false, s.send(views.SSESessions, "changed")
}

// countLowered answers a published count below one sent: an older message
// after a catch-up's read (see stream.sentViews), or a count edited down by
// hand and counted on. Redis says which: the page shows its count.
func (s *stream) countLowered() (done bool, err error) {
	t, err := s.a.Ops.Times(s.redis(), s.token)
	switch {
	case errors.Is(err, sessions.ErrNoSession):
		return true, s.send(views.SSEEnded, "ended")
	case err != nil || t.Views >= s.sentViews:
		return false, nil // an older message; or Redis cannot say, and the next count will
	}
	s.sentViews = t.Views
	return false, s.send(views.SSECount, strconv.Itoa(t.Views))
}

// sendCount sends a count newer than any sent before (see stream.sentViews).
func (s *stream) sendCount(n int) error {
	if n <= s.sentViews {
		return nil
	}
	s.sentViews = n
	return s.send(views.SSECount, strconv.Itoa(n))
}

// warnIfEnding checks whether the session's end is still close (another tab
// may have used it): it sends the warning, or SSEEnded, and returns when to
// look again (0: the session is gone).
func (s *stream) warnIfEnding() (time.Duration, error) {
	times, err := s.a.Ops.Times(s.redis(), s.token)
	var end time.Time // zero: the session is gone
	switch {
	case errors.Is(err, sessions.ErrNoSession):
	case err != nil:
		return time.Minute, nil // try again later; the stream itself is fine
	default:
		end = times.End(s.a.Idle)
	}
	now := time.Now()
	if end.IsZero() || !now.Before(end) {
		return 0, s.send(views.SSEEnded, "expired")
	}
	if left := end.Sub(now); left > sessions.WarnBefore {
		return left - sessions.WarnBefore, nil
	}
	var buf bytes.Buffer
	if err := views.StaySignedInControl(views.StaySignedIn{IdleDeadline: end, Now: now, WarnBefore: sessions.WarnBefore, Pushed: true}).Render(s.ctx, &buf); err != nil {
		return 0, err
	}
	// Look again just after the end: then the page is sent to log in.
	return end.Sub(now) + time.Second, s.send(views.SSEIdle, buf.String())
}

// redis is the context for one Redis call of the stream: the request's
// trace, and a fresh request budget (the first was for opening the stream).
func (s *stream) redis() context.Context {
	return redisconn.WithBudget(s.ctx, redisconn.RequestBudget)
}

// sendBrowsers sends an address's list for this stream's session: its own
// row always there, with the counter's count if the list is older.
func (s *stream) sendBrowsers(list sessions.BrowserList) error {
	id := sessions.ID(s.token)
	for i := range list.Rows {
		if list.Rows[i].ID == id {
			list.Rows[i].Views = max(list.Rows[i].Views, s.sentViews)
			own := list.Rows[i]
			s.own = &own
		}
	}
	var buf bytes.Buffer
	if err := views.BrowsersList(s.a.browsers(s.addr, list, id, s.own)).Render(s.ctx, &buf); err != nil {
		return err
	}
	if html := buf.String(); html != s.browsersShown {
		if err := s.send(views.SSEBrowsers, html); err != nil {
			return err
		}
		s.browsersShown = html
	}
	if news := labNews(list.Rows, id); news != s.labNews {
		s.labNews = news
		return s.send(views.SSELab, news)
	}
	return nil
}

// send writes one event and flushes it (see write).
func (s *stream) send(event, data string) error {
	var b bytes.Buffer
	_ = sendEvent(&b, event, data)
	return s.write(b.Bytes())
}

// write sends p to the client within streamWriteTimeout. A client that does
// not take it by then is dropped: the error ends the stream.
func (s *stream) write(p []byte) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil {
		return fmt.Errorf("live: cannot bound a write: %w", err)
	}
	select {
	case <-s.stop: // end ran before this deadline was set
		return errStreamEnded
	default:
	}
	if _, err := s.w.Write(p); err != nil {
		return err
	}
	if err := s.rc.Flush(); err != nil {
		return err
	}
	if n, ok := unsent(s.conn); ok && n > maxUnsent {
		return errClientNotReading
	}
	return nil
}

// errClientNotReading: the client left maxUnsent bytes of its stream
// unread; it is reset like one whose write timed out.
var errClientNotReading = fmt.Errorf("live: client not reading: %w", os.ErrDeadlineExceeded)

// tcpConn is the TCP connection under the request's wrappers, or nil.
func tcpConn(r *http.Request) net.Conn {
	var c net.Conn
	if oc, ok := r.Context().Value(oneWriteKey{}).(*oneWriteConn); ok {
		c = oc
	}
	for c != nil {
		if _, ok := c.(*net.TCPConn); ok {
			return c
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = w.NetConn()
	}
	return nil
}

var errStreamEnded = errors.New("live: stream ended by the server")

// hello is the stream's first event's data (views.SSEHello); an error only
// when the client left as the stream opened (the render stops at a
// cancelled context): no one to send it to, and no server error.
func (a *App) hello(ctx context.Context, r *http.Request, session bool) (string, error) {
	h := views.Hello{Process: a.process(), Previous: knownProcess(r), Session: session,
		Memory: a.InProcess, Views: a.Sessions.GetInt(ctx, sessions.KeyViews)}
	var buf bytes.Buffer
	if err := views.LiveHello(h).Render(ctx, &buf); err != nil {
		if clientGone(r) {
			return "", err
		}
		a.Log.ErrorContext(r.Context(), "live: render hello", "err", err)
	}
	return buf.String(), nil
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

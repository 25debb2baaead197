package handlers

import (
	"bytes"
	"cmp"
	"container/list"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/sessionlab/sessionlab/internal/live"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/throttle"
	"github.com/sessionlab/sessionlab/views"
)

// StreamLimits bound the open /live streams, two goroutines and about 70 KB
// each, so nobody holds the server's memory with streams nobody reads.
type StreamLimits struct {
	// PerSession: one stream serves a browser's tabs; two while a reconnect
	// overlaps a stream not yet seen dead.
	PerSession int
	// PerAddress: a class shares one address (two browsers each).
	PerAddress int
	// PerProcess caps the memory all streams together can hold.
	PerProcess int
}

// StreamLimitsForClass sizes the limits for a class of n behind one address
// (docs/security.md).
func StreamLimitsForClass(n int) StreamLimits {
	return StreamLimits{PerSession: 4, PerAddress: 3 * n, PerProcess: 5 * n}
}

// DefaultStreamLimits are sized for throttle.DefaultClass.
var DefaultStreamLimits = StreamLimitsForClass(throttle.DefaultClass)

// streamLimits are the App's limits, each zero one taken from the defaults.
func (a *App) streamLimits() StreamLimits {
	d := DefaultStreamLimits
	return StreamLimits{PerSession: cmp.Or(a.StreamLimits.PerSession, d.PerSession),
		PerAddress: cmp.Or(a.StreamLimits.PerAddress, d.PerAddress),
		PerProcess: cmp.Or(a.StreamLimits.PerProcess, d.PerProcess)}
}

// streamRetryAfter is how long a refused page waits before it asks again:
// by then a stream whose browser left has been found dead by its next write.
const streamRetryAfter = 30 * time.Second

// errStreamRefused: a bound on open streams was reached.
type errStreamRefused struct {
	bound string // "session", "address" or "process"
	limit int
	open  int // streams open in the process then
}

func (e *errStreamRefused) Error() string {
	return fmt.Sprintf("live: too many open streams for this %s (limit %d)", e.bound, e.limit)
}

// openStreams counts the open streams by session and address, and ends them
// all at shutdown. Its zero value is ready to use.
type openStreams struct {
	mu        sync.Mutex
	all       map[*stream]struct{}
	bySession map[string]int
	byAddr    map[string]*list.List // each address's streams, oldest first
	opened    uint64                // streams admitted so far: each one's place in line
	ended     bool                  // the server is shutting down: no new stream
}

// roomMargin is how many fewer streams than the biggest holder an address
// must hold for its stream to take one of that holder's places. With a
// margin of one, two addresses flooding a full process would take places
// from each other on every request (499 against 500, then 500 against 499);
// with two they settle, while an address holding few still gets in.
const roomMargin = 2

// admit counts s in, or says which bound it would pass. When the process is
// full, a stream from an address holding at least roomMargin fewer than the
// biggest holder takes the place of that holder's oldest stream (ended as
// if refused; the room made is returned), so that no few addresses can keep
// everyone else's live updates out: the streams end up shared between the
// addresses asking for them. open is the count of streams then.
func (o *openStreams) admit(s *stream, lim StreamLimits) (madeRoom bool, open int, err error) {
	id := sessions.ID(s.token)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.all == nil {
		o.all, o.bySession, o.byAddr = map[*stream]struct{}{}, map[string]int{}, map[string]*list.List{}
	}
	if o.ended {
		return false, len(o.all), live.ErrClosed
	}
	held := o.held(s.limitAddr)
	var biggest *list.List // when the process is full: whose oldest stream makes room
	if len(o.all) >= lim.PerProcess {
		biggest = o.biggest()
	}
	switch {
	case biggest != nil && held+roomMargin > biggest.Len():
		return false, len(o.all), &errStreamRefused{"process", lim.PerProcess, len(o.all)}
	case held >= lim.PerAddress:
		return false, len(o.all), &errStreamRefused{"address", lim.PerAddress, len(o.all)}
	case o.bySession[id] >= lim.PerSession:
		return false, len(o.all), &errStreamRefused{"session", lim.PerSession, len(o.all)}
	}
	if biggest != nil {
		oldest := biggest.Front().Value.(*stream)
		o.forget(oldest)
		oldest.endFor(endedForRoom)
	}
	o.all[s] = struct{}{}
	o.bySession[id]++
	l := o.byAddr[s.limitAddr]
	if l == nil {
		l = list.New()
		o.byAddr[s.limitAddr] = l
	}
	o.opened++
	s.seq = o.opened
	s.place = l.PushBack(s)
	return biggest != nil, len(o.all), nil
}

// held is how many streams addr holds.
func (o *openStreams) held(addr string) int {
	if l := o.byAddr[addr]; l != nil {
		return l.Len()
	}
	return 0
}

// biggest is the streams of the address holding the most; of several
// holding as many, the one whose oldest stream is oldest, so a tie is
// broken the same way whatever the map's order.
func (o *openStreams) biggest() *list.List {
	var big *list.List
	for _, l := range o.byAddr {
		if big == nil || l.Len() > big.Len() ||
			l.Len() == big.Len() && l.Front().Value.(*stream).seq < big.Front().Value.(*stream).seq {
			big = l
		}
	}
	return big
}

// streamSubject is the key of the per-address bound: loopback is one
// computer (as for the browsers list), any other address is counted as the
// throttles count it, so an IPv6 client cannot pass the bound by using
// another address of its /64.
func streamSubject(ip netip.Addr) string {
	if ip.IsLoopback() {
		return sessions.Loopback
	}
	return throttle.Subject(ip)
}

// remove gives s's place back.
func (o *openStreams) remove(s *stream) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.forget(s)
}

// forget gives s's place back (o.mu held); a stream already forgotten, as
// one ended to make room, is left as it is.
func (o *openStreams) forget(s *stream) {
	if _, ok := o.all[s]; !ok {
		return
	}
	id := sessions.ID(s.token)
	delete(o.all, s)
	if o.bySession[id]--; o.bySession[id] <= 0 {
		delete(o.bySession, id)
	}
	l := o.byAddr[s.limitAddr]
	l.Remove(s.place)
	if l.Len() == 0 {
		delete(o.byAddr, s.limitAddr)
	}
}

// endAll ends every open stream now, even one blocked writing, and refuses new ones.
func (o *openStreams) endAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = true
	for s := range o.all {
		s.endFor(endedAtShutdown)
	}
}

// count is how many streams are open.
func (o *openStreams) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.all)
}

// EndStreams ends every open /live stream and refuses new ones, so that
// Shutdown never waits on a stream.
func (a *App) EndStreams() { a.streams.endAll() }

// tallyStreamRefused counts a stream refused at a bound: a flood of them is
// a line a minute, with the counts by bound.
func (a *App) tallyStreamRefused(s *stream, e *errStreamRefused) {
	a.tally(s.ctx, tallyEvent{kind: "live stream past a bound",
		msg: "live streams refused at a bound (counts since the last such line)", level: slog.LevelWarn,
		names: byClient, key: s.limitAddr, by: e.bound, byAll: []string{"session", "address", "process"},
		head: []any{"open", e.open}})
}

// tallyStreamEndedForRoom counts a stream that took the place of another
// address's (openStreams.admit): a line a minute, counted by the address
// that asked.
func (a *App) tallyStreamEndedForRoom(s *stream, open int) {
	if a.Metrics != nil {
		a.Metrics.LiveStreamEndedForRoom()
	}
	a.tally(s.ctx, tallyEvent{kind: "live stream ended to make room",
		msg: "live streams ended to make room for another address's (counts since the last such line)", level: slog.LevelWarn,
		names: byTaker, key: s.limitAddr, head: []any{"open", open}})
}

// streamRefused answers a stream past a bound: 429 with Retry-After and a
// line the page shows instead of "the server is not answering".
// The process bound is the server's: the address refused at it holds no
// more than others, so "from here" would blame it.
func (a *App) streamRefused(w http.ResponseWriter, r *http.Request, e *errStreamRefused) {
	where := "from here"
	if e.bound == "process" {
		where = "on this server"
	}
	answerPlain(w, failTooManyStreams, fmt.Sprintf("Too many live pages are open %s (at most %d per %s). "+
		"This page still works; it asks for its live updates again in %d seconds.\n", where, e.limit, e.bound, wholeSeconds(streamRetryAfter)))
}

// sayMadeRoom is the last word of a stream ended to make room: what a
// refusal says, and its Retry-After as the event's retry field, so the page
// waits as it would after a 429. It writes past end's stop, within endGrace.
func (s *stream) sayMadeRoom() {
	var b bytes.Buffer
	fmt.Fprintf(&b, "retry: %d\n", streamRetryAfter.Milliseconds())
	_ = sendEvent(&b, views.SSEMadeRoom, fmt.Sprintf("Too many live pages are open on this server, and this address holds the most "+
		"of them, so this page made room for another address's. This page still works; it asks for its live updates again in %d seconds.",
		wholeSeconds(streamRetryAfter)))
	if err := s.rc.SetWriteDeadline(time.Now().Add(endGrace)); err != nil {
		return
	}
	if _, err := s.w.Write(b.Bytes()); err == nil {
		_ = s.rc.Flush()
	}
}

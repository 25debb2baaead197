package handlers

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/sessionlab/sessionlab/internal/live"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/throttle"
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
	byAddr    map[string]int
	ended     bool // the server is shutting down: no new stream
}

// admit counts s in, or says which bound it would pass.
func (o *openStreams) admit(s *stream, lim StreamLimits) error {
	id := sessions.ID(s.token)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.all == nil {
		o.all, o.bySession, o.byAddr = map[*stream]struct{}{}, map[string]int{}, map[string]int{}
	}
	switch {
	case o.ended:
		return live.ErrClosed
	case len(o.all) >= lim.PerProcess:
		return &errStreamRefused{"process", lim.PerProcess, len(o.all)}
	case o.byAddr[s.limitAddr] >= lim.PerAddress:
		return &errStreamRefused{"address", lim.PerAddress, len(o.all)}
	case o.bySession[id] >= lim.PerSession:
		return &errStreamRefused{"session", lim.PerSession, len(o.all)}
	}
	o.all[s] = struct{}{}
	o.bySession[id]++
	o.byAddr[s.limitAddr]++
	return nil
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
	id := sessions.ID(s.token)
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.all[s]; !ok {
		return
	}
	delete(o.all, s)
	if o.bySession[id]--; o.bySession[id] <= 0 {
		delete(o.bySession, id)
	}
	if o.byAddr[s.limitAddr]--; o.byAddr[s.limitAddr] <= 0 {
		delete(o.byAddr, s.limitAddr)
	}
}

// endAll ends every open stream now, even one blocked writing, and refuses new ones.
func (o *openStreams) endAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = true
	for s := range o.all {
		s.end()
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

// streamRefused answers a stream past a bound: 429 with Retry-After and a
// line the page shows instead of "the server is not answering".
func (a *App) streamRefused(w http.ResponseWriter, r *http.Request, e *errStreamRefused) {
	answerPlain(w, failTooManyStreams, fmt.Sprintf("Too many live pages are open from here (at most %d per %s). "+
		"This page still works; its live updates resume within %d seconds.\n", e.limit, e.bound, wholeSeconds(streamRetryAfter)))
}

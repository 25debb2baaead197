// Package live fans Redis pub/sub messages out to this process's event
// streams over one connection, subscribing a channel only while a local
// stream wants it.
package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// ErrClosed means the hub has shut down (the server is stopping).
var ErrClosed = errors.New("live: hub closed")

// Hub is the process's pub/sub connection and its local subscribers.
type Hub struct {
	rdb rueidis.Client // nil: local only (memory store mode)
	log *slog.Logger

	// connMu keeps SUBSCRIBE and UNSUBSCRIBE in the order of changes to subs.
	// mu is never held across a Redis call: the connection's reader takes it.
	connMu  sync.Mutex
	mu      sync.Mutex
	subs    map[string]map[*Sub]struct{}
	conn    rueidis.DedicatedClient // current subscription connection, nil while (re)connecting
	closed  bool
	done    chan struct{}
	stopped chan struct{}
}

// Sub is one local subscriber (one SSE stream) on one or more channels.
type Sub struct {
	C chan Message // closed when the hub closes
	// Resync gets a signal when messages were lost (a reconnect, or C was
	// full): read the current state again.
	Resync   chan struct{}
	channels []string
}

// Message is one published message.
type Message struct {
	Channel, Payload string
}

// New starts a hub on rdb; with rdb nil it delivers only what Publish is given.
func New(rdb rueidis.Client, log *slog.Logger) *Hub {
	h := &Hub{rdb: rdb, log: log, subs: map[string]map[*Sub]struct{}{},
		done: make(chan struct{}), stopped: make(chan struct{})}
	if rdb == nil {
		close(h.stopped)
		return h
	}
	go h.run()
	return h
}

// outage is what run logs of a lost subscription connection: the loss at
// once, then while reconnects fail (one a second) a line a minute, and the
// return once a subscribe succeeds, as docs/reliability.md promises for
// every outage (once per kind and minute), not a line per attempt.
type outage struct {
	since, logged time.Time
	attempts      int
}

// lost notes a failed or ended connection.
func (o *outage) lost(log *slog.Logger, err error, now time.Time) {
	o.attempts++
	switch {
	case o.since.IsZero():
		o.since, o.logged, o.attempts = now, now, 0
		log.Warn("live: subscription connection lost; reconnecting every second", "err", err)
	case now.Sub(o.logged) >= time.Minute:
		log.Warn("live: subscription connection still down", "err", err, "down_for", now.Sub(o.since).Round(time.Second), "failed_attempts", o.attempts)
		o.logged = now
	}
}

// back notes a connection that is up again.
func (o *outage) back(log *slog.Logger, now time.Time) {
	if o.since.IsZero() {
		return
	}
	log.Info("live: subscription connection restored", "down_for", now.Sub(o.since).Round(time.Second), "failed_attempts", o.attempts)
	*o = outage{}
}

// upFor is how long a connection with no channel to subscribe must last to
// count as up again after an outage.
const upFor = 5 * time.Second

// run keeps the subscription connection open, resubscribing after a reconnect.
func (h *Hub) run() {
	defer close(h.stopped)
	var down outage
	for {
		conn, release := h.rdb.Dedicate()
		wait := conn.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) {
			h.Publish(m.Channel, m.Message)
		}})
		h.connMu.Lock()
		h.mu.Lock()
		channels := make([]string, 0, len(h.subs))
		for ch := range h.subs {
			channels = append(channels, ch)
		}
		h.mu.Unlock()
		var err error
		if len(channels) > 0 {
			err = conn.Do(context.Background(), conn.B().Subscribe().Channel(channels...).Build()).Error()
		}
		if err == nil {
			h.mu.Lock()
			h.conn = conn
			if len(channels) > 0 {
				// Whoever subscribed while there was no connection (an
				// outage, or the first connection still opening) may have
				// missed messages: a count publishes only to a channel with
				// a subscriber in Redis.
				h.resync()
			}
			h.mu.Unlock()
		}
		h.connMu.Unlock()
		if err == nil {
			// With no channel to subscribe, nothing confirms the connection
			// but how long it lasts.
			up := time.Now()
			if len(channels) > 0 {
				down.back(h.log, up)
			}
			// Without a subscribe, a connection that lasts upFor is up:
			// say so then, not when it next ends (which may be hours away,
			// and subscribers coming meanwhile use h.conn, not this loop).
			confirm := time.NewTimer(upFor)
		waiting:
			for {
				select {
				case err = <-wait:
					break waiting
				case <-h.done:
					break waiting
				case <-confirm.C:
					down.back(h.log, up)
				}
			}
			confirm.Stop()
			if time.Since(up) >= upFor {
				down.back(h.log, up)
			}
		}
		h.mu.Lock()
		h.conn = nil
		h.mu.Unlock()
		conn.Close()
		release()
		select {
		case <-h.done:
			return
		default:
		}
		down.lost(h.log, err, time.Now())
		select {
		case <-h.done:
			return
		case <-time.After(time.Second):
		}
	}
}

// resync signals every subscriber that messages may have been lost; the
// caller holds mu. A signal already pending stands for this one too.
func (h *Hub) resync() {
	for _, set := range h.subs {
		for s := range set {
			select {
			case s.Resync <- struct{}{}:
			default:
			}
		}
	}
}

// Subscribe registers a local subscriber on channels; anything published
// after it returns reaches s.C (if the connection is up). Unsubscribe when done.
func (h *Hub) Subscribe(ctx context.Context, channels ...string) (*Sub, error) {
	s := &Sub{C: make(chan Message, 16), Resync: make(chan struct{}, 1), channels: channels}
	h.connMu.Lock()
	defer h.connMu.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	var fresh []string
	for _, ch := range channels {
		if h.subs[ch] == nil {
			h.subs[ch] = map[*Sub]struct{}{}
			fresh = append(fresh, ch)
		}
		h.subs[ch][s] = struct{}{}
	}
	conn := h.conn
	h.mu.Unlock()
	if len(fresh) > 0 && conn != nil {
		start := time.Now()
		err := conn.Do(ctx, conn.B().Subscribe().Channel(fresh...).Build()).Error()
		// The subscription connection is the hub's, untraced: the stream's
		// trace notes the SUBSCRIBE sent for it.
		reply := "subscribed"
		if err != nil {
			reply = "failed"
		}
		redistrace.From(ctx).Add(redistrace.Command{Args: append([]string{"SUBSCRIBE"}, fresh...), Reply: reply, Took: time.Since(start)})
		if err != nil {
			h.drop(s)
			return nil, fmt.Errorf("live: subscribe: %w", err)
		}
	}
	return s, nil
}

// Unsubscribe removes a subscriber, and in Redis the channels nobody wants.
func (h *Hub) Unsubscribe(s *Sub) {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	h.drop(s)
}

// drop removes s; the caller holds connMu.
func (h *Hub) drop(s *Sub) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	var gone []string
	for _, ch := range s.channels {
		set := h.subs[ch]
		if set == nil {
			continue
		}
		delete(set, s)
		if len(set) == 0 {
			delete(h.subs, ch)
			gone = append(gone, ch)
		}
	}
	conn := h.conn
	h.mu.Unlock()
	if len(gone) > 0 && conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := conn.Do(ctx, conn.B().Unsubscribe().Channel(gone...).Build()).Error(); err != nil {
			h.log.Warn("live: unsubscribe failed", "err", err)
		}
	}
}

// Publish delivers a message to the local subscribers of channel; one that
// is not keeping up misses it, and gets Resync, rather than block others.
func (h *Hub) Publish(channel, payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[channel] {
		select {
		case s.C <- Message{channel, payload}:
		default:
			select {
			case s.Resync <- struct{}{}:
			default:
			}
		}
	}
}

// Stats is what the hub holds open: local subscribers and Redis channels.
type Stats struct {
	Streams, Channels int
}

// Stats counts open subscribers and channels.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	streams := map[*Sub]struct{}{}
	for _, set := range h.subs {
		for s := range set {
			streams[s] = struct{}{}
		}
	}
	return Stats{Streams: len(streams), Channels: len(h.subs)}
}

// Close ends every stream and the Redis subscription connection.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	seen := map[*Sub]struct{}{}
	for _, set := range h.subs {
		for s := range set {
			if _, ok := seen[s]; !ok {
				seen[s] = struct{}{}
				close(s.C)
			}
		}
	}
	h.subs = map[string]map[*Sub]struct{}{}
	close(h.done)
	h.mu.Unlock()
	<-h.stopped
}

package live

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

func newHub(t *testing.T) (*Hub, rueidis.Client, *redistest.Server) {
	t.Helper()
	return newHubLogging(t, io.Discard)
}

// newHubLogging is newHub with the hub's log written to log.
func newHubLogging(t *testing.T, log io.Writer) (*Hub, rueidis.Client, *redistest.Server) {
	t.Helper()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	h := New(rdb, slog.New(slog.NewTextHandler(log, nil)))
	t.Cleanup(h.Close)
	waitUntil(t, "the hub's connection", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.conn != nil
	})
	return h, rdb, rs
}

// numsub is how many Redis subscriptions channel has.
func numsub(t *testing.T, rdb rueidis.Client, channel string) int64 {
	t.Helper()
	m, err := rdb.Do(context.Background(), rdb.B().PubsubNumsub().Channel(channel).Build()).AsIntMap()
	if err != nil {
		t.Fatal(err)
	}
	return m[channel]
}

func publish(t *testing.T, rdb rueidis.Client, channel, msg string) {
	t.Helper()
	if err := rdb.Do(context.Background(), rdb.B().Publish().Channel(channel).Message(msg).Build()).Error(); err != nil {
		t.Fatal(err)
	}
}

func receive(t *testing.T, s *Sub) Message {
	t.Helper()
	select {
	case m, ok := <-s.C:
		if !ok {
			t.Fatal("the subscriber channel closed before a message came")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return Message{}
	}
}

// Many local subscribers of one channel share one Redis subscription, which
// ends with the last of them.
func TestHubSubscribesOncePerChannel(t *testing.T) {
	h, rdb, _ := newHub(t)
	ctx := context.Background()
	var subs []*Sub
	for range 3 {
		s, err := h.Subscribe(ctx, "live:sess:x")
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if n := numsub(t, rdb, "live:sess:x"); n != 1 {
		t.Errorf("3 local subscribers hold %d Redis subscriptions, want 1", n)
	}
	publish(t, rdb, "live:sess:x", "count 7")
	for i, s := range subs {
		if m := receive(t, s); m.Payload != "count 7" {
			t.Errorf("subscriber %d got %q", i, m.Payload)
		}
	}
	for i, s := range subs {
		h.Unsubscribe(s)
		want := int64(1)
		if i == len(subs)-1 {
			want = 0
		}
		if n := numsub(t, rdb, "live:sess:x"); n != want {
			t.Errorf("after %d of 3 left: %d Redis subscriptions, want %d", i+1, n, want)
		}
	}
	if st := h.Stats(); st != (Stats{}) {
		t.Errorf("Stats after everyone left = %+v, want zero", st)
	}
}

// Streams that share a channel (two browsers on one computer share its
// browsers channel) keep it in Redis while any of them is open: one leaving
// unsubscribes only what nobody else wants, and messages still reach the
// other.
func TestHubKeepsASharedChannelWhileAStreamNeedsIt(t *testing.T) {
	h, rdb, _ := newHub(t)
	ctx := context.Background()
	a, err := h.Subscribe(ctx, "live:sess:a", "live:browsers:addr")
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Subscribe(ctx, "live:sess:b", "live:browsers:addr")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unsubscribe(b)
	h.Unsubscribe(a)
	for ch, want := range map[string]int64{"live:sess:a": 0, "live:sess:b": 1, "live:browsers:addr": 1} {
		if n := numsub(t, rdb, ch); n != want {
			t.Errorf("after one stream left: %s has %d Redis subscriptions, want %d", ch, n, want)
		}
	}
	publish(t, rdb, "live:browsers:addr", "browsers")
	if m := receive(t, b); m.Payload != "browsers" {
		t.Errorf("the stream left open got %q, want browsers", m.Payload)
	}
	if st := h.Stats(); st != (Stats{Streams: 1, Channels: 2}) {
		t.Errorf("Stats = %+v, want 1 stream on 2 channels", st)
	}
}

// After Redis restarts, the hub subscribes again to what its streams want.
func TestHubResubscribesAfterRedisRestarts(t *testing.T) {
	h, rdb, rs := newHub(t)
	s, err := h.Subscribe(context.Background(), "live:user:alice")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unsubscribe(s)
	rs.Restart()
	waitUntil(t, "the subscription to come back", func() bool {
		m, err := rdb.Do(context.Background(), rdb.B().PubsubNumsub().Channel("live:user:alice").Build()).AsIntMap()
		return err == nil && m["live:user:alice"] == 1
	})
	publish(t, rdb, "live:user:alice", "sessions")
	if m := receive(t, s); m.Payload != "sessions" {
		t.Errorf("after the restart got %q, want sessions", m.Payload)
	}
}

// A subscriber that came while the hub's first connection was still opening
// is told to catch up once it is open: what was published meanwhile reached
// nobody (a count publishes only to channels with a subscriber in Redis).
func TestHubResyncsSubscribersThatCameBeforeTheFirstConnection(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	rs.Pause() // the hub's first connection hangs in its handshake
	h := New(rdb, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(h.Close)
	s, err := h.Subscribe(context.Background(), "live:sess:early")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unsubscribe(s)
	rs.Resume()
	waitUntil(t, "the subscription in Redis", func() bool { return numsub(t, rdb, "live:sess:early") == 1 })
	select {
	case <-s.Resync:
	case <-time.After(10 * time.Second):
		t.Fatal("the early subscriber was not told to catch up")
	}
}

// An outage is logged once, not once per reconnect attempt (one a second),
// and so is the return (docs/reliability.md: once per kind and minute).
func TestHubLogsAnOutageOnce(t *testing.T) {
	var log apptest.Buffer
	h, rdb, rs := newHubLogging(t, &log)
	s, err := h.Subscribe(context.Background(), "live:user:alice")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unsubscribe(s)
	rs.Stop()
	time.Sleep(3500 * time.Millisecond) // three or four attempts fail
	rs.Start()
	waitUntil(t, "the subscription to come back", func() bool {
		m, err := rdb.Do(context.Background(), rdb.B().PubsubNumsub().Channel("live:user:alice").Build()).AsIntMap()
		return err == nil && m["live:user:alice"] == 1
	})
	waitUntil(t, "the return to be logged", func() bool { return strings.Contains(log.String(), "restored") })
	out := log.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Errorf("%d WARN lines for one outage of 3.5 s, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "failed_attempts=") {
		t.Errorf("the return does not say how many attempts failed:\n%s", out)
	}
}

// With no channel subscribed (no page open), the return is logged once the
// connection has lasted a few seconds, not when it next ends: the outage's
// WARN must not stand alone for hours after Redis came back.
func TestHubLogsTheReturnWithNoSubscriber(t *testing.T) {
	var log apptest.Buffer
	_, _, rs := newHubLogging(t, &log)
	rs.Stop()
	time.Sleep(upFor + 2*time.Second) // longer than upFor: a down Redis is not "restored"
	if out := log.String(); strings.Contains(out, "restored") || !strings.Contains(out, "lost") {
		t.Fatalf("while Redis is down the log says:\n%s", out)
	}
	rs.Start()
	waitUntil(t, "the return to be logged", func() bool { return strings.Contains(log.String(), "restored") })
	if out := log.String(); strings.Count(out, "level=WARN") != 1 {
		t.Errorf("want one WARN for one outage:\n%s", out)
	}
}

// Close ends every subscriber's channel, and later subscriptions fail.
func TestHubCloseEndsSubscribers(t *testing.T) {
	h, _, _ := newHub(t)
	s, err := h.Subscribe(context.Background(), "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	select {
	case m, open := <-s.C:
		if open {
			t.Errorf("after Close the subscriber got %q, want its channel closed", m.Payload)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the subscriber channel is still open 10s after Close")
	}
	if _, err := h.Subscribe(context.Background(), "c"); err != ErrClosed {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
	h.Unsubscribe(s) // harmless
}

// Without Redis (memory store mode) the hub delivers what this process
// publishes.
func TestLocalHubDeliversLocally(t *testing.T) {
	h := New(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer h.Close()
	s, err := h.Subscribe(context.Background(), "live:sess:y")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		h.Publish("live:sess:y", "count "+strconv.Itoa(i))
		if m := receive(t, s); m.Payload != "count "+strconv.Itoa(i) {
			t.Errorf("got %q", m.Payload)
		}
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

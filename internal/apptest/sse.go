package apptest

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Event is one server-sent event.
type Event struct {
	Name, Data string
	Retry      string // the event's retry field: how many ms to wait before reconnecting
}

// Stream is an open server-sent-event stream, read by a plain HTTP client
// as a browser's EventSource would.
type Stream struct {
	tb     testing.TB
	Status int
	Events chan Event // closed when the stream ends
	cancel context.CancelFunc
	ended  chan struct{}
}

// OpenStream GETs url with c's cookies and reads events until the stream ends
// or Close; it returns once the headers are in, so a 200 has subscribed.
func OpenStream(tb testing.TB, c *http.Client, url string) *Stream {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/event-stream")
	// The client's own timeout would cut a long stream; the context ends it.
	sc := &http.Client{Jar: c.Jar, CheckRedirect: c.CheckRedirect, Transport: c.Transport}
	resp, err := sc.Do(req)
	if err != nil {
		cancel()
		tb.Fatalf("apptest: open stream %s: %v", url, err)
	}
	s := &Stream{tb: tb, Status: resp.StatusCode, Events: make(chan Event, 64), cancel: cancel, ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		defer close(s.Events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev Event
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" || len(data) > 0 {
					ev.Data = strings.Join(data, "\n")
					select {
					case s.Events <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev, data = Event{}, nil
			case strings.HasPrefix(line, "event: "):
				ev.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data = append(data, strings.TrimPrefix(line, "data: "))
			case strings.HasPrefix(line, "retry: "):
				ev.Retry = strings.TrimPrefix(line, "retry: ")
			}
		}
	}()
	tb.Cleanup(s.Close)
	return s
}

// Next waits for the next event named name, skipping others; it fails the
// test if the stream ends first or after 10 s (only a broken test waits).
func (s *Stream) Next(name string) Event {
	s.tb.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.Events:
			if !ok {
				s.tb.Fatalf("apptest: stream ended before a %q event", name)
			}
			if ev.Name == name {
				return ev
			}
		case <-timeout:
			s.tb.Fatalf("apptest: no %q event within 10s", name)
		}
	}
}

// Ended waits until the server ends the stream, reporting whether it did
// within 10 seconds.
func (s *Stream) Ended() bool {
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-s.Events:
			if !ok {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// Close leaves the stream, as a browser closing the tab, and waits until
// the body is closed.
func (s *Stream) Close() {
	s.cancel()
	<-s.ended
}

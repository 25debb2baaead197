package handlers

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// writeCounter counts the writes its connections make, as system calls.
type writeCounter struct {
	net.Listener
	mu     sync.Mutex
	writes []int // sizes, in order
}

func (l *writeCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: c, l: l}, nil
}

func (l *writeCounter) take() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.writes
	l.writes = nil
	return w
}

type countedConn struct {
	net.Conn
	l *writeCounter
}

func (c *countedConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, len(p))
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// A page larger than net/http's 4 KB write buffer goes to the client in
// one write, and arrives whole.
func TestPageInOneWrite(t *testing.T) {
	ta := newTestApp(t)
	srv := httptest.NewUnstartedServer(ta.app.Routes())
	counter := &writeCounter{Listener: srv.Listener}
	srv.Listener = OneWriteListener(srv.Config, counter)
	srv.Start()
	t.Cleanup(srv.Close)
	ta.srv = srv
	c := ta.client()
	ta.register(c, "alice", "correct-horse")
	for _, path := range []string{"/profile", "/count", "/count"} {
		counter.take()
		r := ta.get(c, path, "Accept-Encoding", "identity") // a gzipped page is under 4 KB
		if r.status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, r.status)
		}
		// With its headers (about 500 B), the page passes 4 KB.
		if r.length != int64(len(r.body)) || len(r.body) < 3800 {
			t.Fatalf("GET %s: Content-Length %d, body %d B; want a whole page near 4 KB or more", path, r.length, len(r.body))
		}
		if w := counter.take(); len(w) != 1 {
			t.Errorf("GET %s (%d B page): %d writes %v, want 1", path, len(r.body), len(w), w)
		}
	}
	// Without the listener's connection (a test server, another server)
	// the page is written as net/http writes it, and is as whole.
	plain := httptest.NewServer(ta.app.Routes())
	t.Cleanup(plain.Close)
	ta.srv = plain
	c = ta.client()
	ta.register(c, "bob", "correct-horse")
	if r := ta.get(c, "/profile", "Accept-Encoding", "identity"); r.status != http.StatusOK || r.length != int64(len(r.body)) {
		t.Errorf("plain server: GET /profile %d, Content-Length %d, body %s B", r.status, r.length, strconv.Itoa(len(r.body)))
	}
}

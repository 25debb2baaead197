package handlers

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
)

// A page goes to the client in one write system call: net/http writes 4 KB
// pieces, every full page took two, and system calls were 40 % of the app's
// CPU. loadAndSave holds the whole response anyway.

// OneWriteListener returns ln with its connections able to collect a
// response (found through srv's ConnContext); serve srv on it.
func OneWriteListener(srv *http.Server, ln net.Listener) net.Listener {
	next := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if next != nil {
			ctx = next(ctx, c)
		}
		if oc, ok := c.(*oneWriteConn); ok {
			ctx = context.WithValue(ctx, oneWriteKey{}, oc)
		}
		return ctx
	}
	return oneWriteListener{ln}
}

type oneWriteListener struct{ net.Listener }

func (l oneWriteListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &oneWriteConn{Conn: c}, nil
}

type oneWriteKey struct{}

// oneWriteConn is a connection whose writes can be collected (hold) and
// sent as one (release).
type oneWriteConn struct {
	net.Conn
	mu   sync.Mutex
	held *bytes.Buffer // from bufferPool while holding; nil otherwise
}

// NetConn is the connection it wraps (as tls.Conn's), for a stream that
// resets a client that does not read (live.go).
func (c *oneWriteConn) NetConn() net.Conn { return c.Conn }

func (c *oneWriteConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.held != nil {
		defer c.mu.Unlock()
		return c.held.Write(p)
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *oneWriteConn) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held == nil {
		c.held = getBuffer()
	}
}

// release writes what was held, in one call. A failed write is the
// client gone: net/http finds the connection broken at its next read.
func (c *oneWriteConn) release() {
	c.mu.Lock()
	held := c.held
	c.held = nil
	c.mu.Unlock()
	if held == nil {
		return
	}
	if held.Len() > 0 {
		if _, err := c.Conn.Write(held.Bytes()); err != nil {
			_ = c.Conn.Close()
		}
	}
	putBuffer(held)
}

// CloseWrite keeps net/http's graceful close (it half-closes a TCP
// connection before closing it) working through the wrapper.
func (c *oneWriteConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// OneWrite sends a response already given whole to w in one write, when r's
// connection can collect it.
func OneWrite(r *http.Request, w http.ResponseWriter, write func()) {
	c, ok := r.Context().Value(oneWriteKey{}).(*oneWriteConn)
	if !ok {
		write()
		return
	}
	c.hold()
	defer c.release()
	write()
	// Flush net/http's buffers into the connection while it holds: the
	// response is complete (it has a Content-Length), so nothing follows.
	_ = http.NewResponseController(w).Flush()
}

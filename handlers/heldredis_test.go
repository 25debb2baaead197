package handlers

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// heldRedis is a TCP proxy in front of a real Redis whose answers to the app
// can be held back on every connection but the subscribed ones: Redis's
// replies and cache invalidations delayed on the way (a busy process, a slow
// network) while pub/sub messages still arrive.
type heldRedis struct {
	rs   *redistest.Server
	ln   net.Listener
	mu   sync.Mutex
	gate chan struct{} // non-nil while held; closed by Release
	sent bytes.Buffer  // what held connections sent since Hold
}

// holdableRedis starts a proxy to rs; point the app at its URL.
func holdableRedis(t *testing.T, rs *redistest.Server) *heldRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &heldRedis{rs: rs, ln: ln}
	t.Cleanup(func() { h.Release(); ln.Close() })
	go h.accept()
	return h
}

func (h *heldRedis) URL() string { return "redis://" + h.ln.Addr().String() + "/0" }

func (h *heldRedis) accept() {
	for {
		app, err := h.ln.Accept()
		if err != nil {
			return
		}
		redis, err := net.Dial("tcp", h.rs.Addr())
		if err != nil {
			app.Close()
			continue
		}
		var subscribed atomic.Bool
		go func() { // app to Redis: always passes
			defer redis.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := app.Read(buf)
				if n > 0 {
					if bytes.Contains(buf[:n], []byte("\r\nSUBSCRIBE\r\n")) {
						subscribed.Store(true)
					}
					h.note(buf[:n], subscribed.Load())
					if _, werr := redis.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		go func() { // Redis to app: waits while held, unless subscribed
			defer app.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := redis.Read(buf)
				if n > 0 {
					if !subscribed.Load() {
						h.wait()
					}
					if _, werr := app.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// note records what a held connection sent while held.
func (h *heldRedis) note(p []byte, subscribed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gate != nil && !subscribed {
		h.sent.Write(p)
	}
}

func (h *heldRedis) wait() {
	h.mu.Lock()
	gate := h.gate
	h.mu.Unlock()
	if gate != nil {
		<-gate
	}
}

// Hold holds back what Redis sends on unsubscribed connections until Release.
func (h *heldRedis) Hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gate == nil {
		h.gate = make(chan struct{})
		h.sent.Reset()
	}
}

// Release lets what was held through, in order.
func (h *heldRedis) Release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gate != nil {
		close(h.gate)
		h.gate = nil
	}
}

// Asked reports whether a held connection has sent a command naming key
// (as a whole argument) since Hold.
func (h *heldRedis) Asked(key string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return bytes.Contains(h.sent.Bytes(), fmt.Appendf(nil, "\r\n$%d\r\n%s\r\n", len(key), key))
}

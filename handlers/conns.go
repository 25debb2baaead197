package handlers

import (
	"context"
	"log/slog"
	"math"
	"net"
	"sync"

	"github.com/sessionlab/sessionlab/internal/metrics"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// ConnLimits bound the client connections open to the app's listener. An
// idle keep-alive connection holds a file descriptor, a goroutine and about
// 20 KB for the server's IdleTimeout (2 minutes): unbounded, one address
// could take every descriptor, and then the server accepts no one and the
// session store cannot dial Redis.
type ConnLimits struct {
	// PerAddress: a class shares one address (two browsers each, six
	// connections a browser). Trusted proxies carry everyone and are not
	// bounded. 0: no bound.
	PerAddress int
	// PerProcess leaves file descriptors (RLIMIT_NOFILE) for Redis dials,
	// the log and the debug listener. 0: no bound.
	PerProcess int
}

// connsPerStudent: two browsers × HTTP/1.1's six connections to a host, and
// three to spare for connections a browser dropped that the server has not
// yet seen close.
const connsPerStudent = 15

// ConnLimitsFor sizes the limits for a class of class students behind one
// address, in a process that may open nofile files (0: unknown, no process
// bound) and keeps up to redisPool connections to Redis. With too few files
// for the class, one address gets half the process bound.
func ConnLimitsFor(class int, nofile uint64, redisPool int) ConnLimits {
	lim := ConnLimits{PerAddress: connsPerStudent * class}
	if nofile == 0 || nofile > math.MaxInt32 {
		return lim
	}
	n := int(nofile)
	// A quarter of the descriptors, and never fewer than the Redis pool and
	// 64 for everything else (Redis's other clients, sentinels, the log).
	lim.PerProcess = max(n-max(n/4, redisPool+64), n/4)
	// One address never holds more than half: the rest stay for others.
	lim.PerAddress = min(lim.PerAddress, lim.PerProcess/2)
	return lim
}

// Where a connection was refused (sessionlab_connections_refused_total's
// bound label, and the log line's bound=).
const (
	connBoundAddress = metrics.ConnBoundAddress
	connBoundProcess = metrics.ConnBoundProcess
)

// LimitConns returns ln with a.ConnLimits applied: a connection past a
// bound is closed as soon as it is accepted, before anything is read, and
// the accept loop goes on at once. Refusals are logged once a minute.
func (a *App) LimitConns(ln net.Listener) net.Listener {
	return &connLimiter{Listener: ln, app: a, lim: a.ConnLimits, byAddr: map[string]int{}}
}

type connLimiter struct {
	net.Listener
	app *App
	lim ConnLimits

	mu     sync.Mutex
	open   int
	byAddr map[string]int // open connections by throttle.Subject; trusted proxies not counted
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		subject, counted := l.subject(c)
		bound, open := l.admit(subject, counted)
		if bound == "" {
			return &limitedConn{Conn: c, limiter: l, subject: subject, counted: counted}, nil
		}
		_ = c.Close()
		l.refused(bound, subject, open)
	}
}

// subject is the key c counts under; counted is false for a trusted proxy
// (and a connection that is not TCP).
func (l *connLimiter) subject(c net.Conn) (string, bool) {
	tcp, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return "", false
	}
	ip := tcp.AddrPort().Addr().Unmap()
	if l.app.TrustedProxies.contain(ip) {
		return throttle.Subject(ip), false
	}
	return throttle.Subject(ip), true
}

// admit counts a new connection in, or names the bound it would pass; open
// is how many the process had.
func (l *connLimiter) admit(subject string, counted bool) (bound string, open int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.lim.PerProcess > 0 && l.open >= l.lim.PerProcess:
		return connBoundProcess, l.open
	case counted && l.lim.PerAddress > 0 && l.byAddr[subject] >= l.lim.PerAddress:
		return connBoundAddress, l.open
	}
	l.open++
	if counted {
		l.byAddr[subject]++
	}
	return "", l.open
}

// release gives a closed connection's place back.
func (l *connLimiter) release(subject string, counted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if counted {
		if l.byAddr[subject]--; l.byAddr[subject] <= 0 {
			delete(l.byAddr, subject)
		}
	}
}

// refused counts a refusal, and logs the line when one is due.
func (l *connLimiter) refused(bound, subject string, open int) {
	a := l.app
	if a.Metrics != nil {
		a.Metrics.ConnectionRefused(bound)
	}
	limit := l.lim.PerAddress
	if bound == connBoundProcess {
		limit = l.lim.PerProcess
	}
	a.tally(context.Background(), tallyEvent{kind: "connection past the " + bound + " bound",
		msg: "connections refused at a bound (counts since the last such line)", level: slog.LevelWarn,
		names: byClient, key: subject, last: []any{"bound", bound, "limit", limit, "open", open}})
}

// limitedConn gives its place back when closed, once.
type limitedConn struct {
	net.Conn
	limiter *connLimiter
	subject string
	counted bool
	once    sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.limiter.release(c.subject, c.counted) })
	return err
}

// NetConn is the connection it wraps, as oneWriteConn's (live.go's reset
// and tcpConn reach the TCP connection through both).
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

// CloseWrite keeps net/http's graceful close working through the wrapper.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

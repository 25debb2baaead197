package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// NewPool returns the redigo pool scs/redisstore keeps sessions through, on
// rdb's master, so the two clients never disagree. Every I/O is bounded; ROLE
// is checked on new, long-idle (roleEvery) and after-failure connections, so
// a demoted master serves no session; during a failover nothing is lent.
func NewPool(cfg Config, rdb rueidis.Client) (*redis.Pool, error) {
	opt, err := cfg.options()
	if err != nil {
		return nil, fmt.Errorf("Redis URL %s: %w", Redact(cfg.URL), err)
	}
	network := "tcp"
	if strings.HasPrefix(cfg.URL, "unix:") {
		network = "unix"
	}
	master := func() string { return opt.InitAddress[0] }
	gate := func(string) error { return nil }
	noReplica := func(string) error { return nil }
	var replicated func(context.Context, string) error
	if opt.Sentinel.MasterSet != "" {
		master = func() string { return MasterAddr(rdb) }
		gate = failingOver // held like rdb's commands while the master is replaced
		noReplica = noReplicaAt
		replicated = replicatedAt
	}
	dialOptions := []redis.DialOption{
		redis.DialTLSHandshakeTimeout(DialTimeout),
		redis.DialReadTimeout(DefaultTimeout),
		redis.DialWriteTimeout(DefaultTimeout),
	}
	if opt.TLSConfig != nil {
		dialOptions = append(dialOptions, redis.DialUseTLS(true), redis.DialTLSConfig(opt.TLSConfig))
	}
	size := cfg.PoolSize
	if size <= 0 {
		size = DefaultPoolSize
	}
	p := &poolState{}
	return &redis.Pool{
		// The bound: a hung Redis otherwise met one new connection per
		// request in flight, hundreds against its maxclients. SessionStore
		// waits for one of these by the call's budget (redigo's Wait ends only
		// with the context); a borrow past it without the store fails at once.
		MaxActive: size,
		// All kept: with fewer idle connections, a burst of 200 requests
		// redialled for about one request in seven (go tool task bench).
		MaxIdle:     size,
		IdleTimeout: 4 * time.Minute,
		// With the borrower's context, so the ROLE check goes into its trace.
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			if c, ok := ctx.(*limitedCtx); ok {
				// A copy: a dial timer that fires as the dial returns cancels
				// its context after the call ended, and reads its parent,
				// which the call's lender has emptied for the next call.
				ctx = &limitedCtx{Context: c.Context, limit: c.limit}
			}
			addr := master()
			if addr == "" {
				return nil, errors.New("Redis Sentinel has named no master yet")
			}
			if err := gate(addr); err != nil {
				return nil, err
			}
			lim := limitOf(ctx)
			var nc *limitedConn
			dial := redis.DialContextFunc(func(ctx context.Context, network, addr string) (net.Conn, error) {
				d := net.Dialer{Timeout: DialTimeout, Deadline: lim, KeepAlive: 5 * time.Minute}
				c, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				nc = &limitedConn{Conn: c, limit: lim}
				return nc, nil
			})
			c, err := redis.DialContext(ctx, network, addr, append(dialOptions[:len(dialOptions):len(dialOptions)], dial)...)
			if err != nil {
				p.failed()
				return nil, err
			}
			wc := &watchedConn{Conn: c, nc: nc, addr: addr, pool: p, noReplica: noReplica, replicated: replicated, times: cfg.PoolTimes, pingOnly: cfg.Managed,
				trace: redistrace.From(ctx)}
			if err := wc.handshake(opt); err != nil {
				c.Close()
				p.failed()
				return nil, err
			}
			if err := wc.checkRole(); err != nil {
				c.Close()
				return nil, err
			}
			return wc, nil
		},
		TestOnBorrowContext: func(ctx context.Context, c redis.Conn, idleSince time.Time) error {
			wc := c.(*watchedConn)
			wc.nc.limit = limitOf(ctx)
			wc.trace = redistrace.From(ctx) // this borrower's, until the next borrow
			wc.queued = wc.queued[:0]
			if err := gate(wc.addr); err != nil {
				return err
			}
			switch {
			case wc.addr != master():
				return errMasterMoved
			case idleSince.UnixNano() < p.lastCheckFailure.Load():
				// A check failed since this went idle: the others would likely
				// fail alike, so a borrow meets at most one failed check.
				return errSuspect
			case time.Since(wc.checked) < roleEvery && wc.checked.UnixNano() > p.lastFailure.Load():
				return nil
			}
			return wc.checkRole()
		},
	}, nil
}

type limitKey struct{}

// limitOf is the time by which the work of whoever borrows a connection
// with ctx must have ended (SessionStore.call); zero: no limit but the
// pool's own timeouts.
func limitOf(ctx context.Context) time.Time {
	if c, ok := ctx.(*limitedCtx); ok {
		return c.limit // without boxing it
	}
	lim, _ := ctx.Value(limitKey{}).(time.Time)
	return lim
}

// limitedConn caps the deadlines redigo sets at every command at the
// borrower's limit, set once for both directions.
type limitedConn struct {
	net.Conn
	limit       time.Time // zero: none
	read, write time.Time // the deadlines set on Conn
}

func (c *limitedConn) bound(t time.Time) time.Time {
	if !c.limit.IsZero() && (t.IsZero() || t.After(c.limit)) {
		return c.limit
	}
	return t
}

func (c *limitedConn) SetDeadline(t time.Time) error {
	t = c.bound(t)
	if t.Equal(c.read) && t.Equal(c.write) {
		return nil
	}
	c.read, c.write = t, t
	return c.Conn.SetDeadline(t)
}

func (c *limitedConn) SetReadDeadline(t time.Time) error {
	t = c.bound(t)
	switch {
	case !c.limit.IsZero() && t.Equal(c.limit):
		return c.SetDeadline(t)
	case t.Equal(c.read):
		return nil
	}
	c.read = t
	return c.Conn.SetReadDeadline(t)
}

func (c *limitedConn) SetWriteDeadline(t time.Time) error {
	t = c.bound(t)
	switch {
	case !c.limit.IsZero() && t.Equal(c.limit):
		return c.SetDeadline(t)
	case t.Equal(c.write):
		return nil
	}
	c.write = t
	return c.Conn.SetWriteDeadline(t)
}

// roleEvery is how long a connection is lent without checking ROLE again:
// a demoted master would serve stale sessions.
const roleEvery = 3 * time.Second

var (
	errMasterMoved = errors.New("the sentinels named another master")
	errSuspect     = errors.New("idle since a check of another connection failed")
)

// MasterAddr is the address of the master rdb sends commands to.
func MasterAddr(rdb rueidis.Client) string {
	for addr := range rdb.Nodes() {
		return addr
	}
	return ""
}

// poolState is what a pool's connections tell each other.
type poolState struct {
	lastFailure      atomic.Int64 // unix nanoseconds: a connection broke, a dial or check failed, a READONLY
	lastCheckFailure atomic.Int64 // unix nanoseconds: a check on borrow failed
}

func (p *poolState) failed() { p.lastFailure.Store(time.Now().UnixNano()) }

// watchedConn records when a connection breaks (an I/O error, not an error
// reply from Redis) or meets a replica, so the pool checks its other
// connections before lending them.
type watchedConn struct {
	redis.Conn
	nc       *limitedConn
	addr     string
	pool     *poolState
	checked  time.Time // last ROLE that said master
	readonly bool      // a READONLY reply: Err makes the pool close it
	// noReplica: the pool's master refuses writes for want of a replica in
	// sync (Sentinel; see ErrNoReplica), nil when it accepts them.
	noReplica func(addr string) error
	// replicated waits until a replica of the master at addr has what it
	// applied (Sentinel; see ErrNotReplicated); nil on a single Redis.
	replicated func(ctx context.Context, addr string) error
	times      Observer             // nil: not observed
	trace      *redistrace.Trace    // the borrowing request's; nil: not traced
	queued     []redistrace.Command // sent by Send, listed with the next Do's reply (traceDone)
	pingOnly   bool                 // Config.Managed: ROLE may be forbidden; READONLY still drops it
}

// handshake sends what redigo's DialPassword, DialClientName and
// DialDatabase would, in redigo's order, through c: so the dialing request's
// trace lists them (AUTH redacted as MONITOR prints it).
func (c *watchedConn) handshake(opt rueidis.ClientOption) error {
	var cmds [3][]any
	n := 0
	switch {
	case opt.Password != "" && opt.Username != "":
		cmds[n], n = []any{"AUTH", opt.Username, opt.Password}, n+1
	case opt.Password != "":
		cmds[n], n = []any{"AUTH", opt.Password}, n+1
	}
	if opt.ClientName != "" {
		cmds[n], n = []any{"CLIENT", "SETNAME", opt.ClientName}, n+1
	}
	if opt.SelectDB != 0 {
		cmds[n], n = []any{"SELECT", opt.SelectDB}, n+1
	}
	for _, cmd := range cmds[:n] {
		if _, err := c.Do(cmd[0].(string), cmd[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// checkRole asks the server whether it is (still) a master.
func (c *watchedConn) checkRole() error {
	var role []any
	var err error
	if c.pingOnly {
		_, err = c.Do("PING")
	} else if role, err = redis.Values(c.Do("ROLE")); err == nil && len(role) == 0 {
		err = errors.New("ROLE: empty reply")
	}
	if err == nil && !c.pingOnly {
		if r, _ := redis.String(role[0], nil); r != "master" {
			c.readonly = true
			err = fmt.Errorf("ROLE of %s: %w", c.addr, errNotMaster)
		}
	}
	if err != nil {
		now := time.Now().UnixNano()
		c.pool.lastFailure.Store(now)
		c.pool.lastCheckFailure.Store(now)
		return err
	}
	c.checked = time.Now()
	return nil
}

func (c *watchedConn) check(err error) error {
	if err == nil {
		return nil
	}
	if c.Conn.Err() != nil {
		c.pool.failed()
	} else if rerr, ok := errors.AsType[redis.Error](err); ok && strings.HasPrefix(string(rerr), "READONLY") {
		c.readonly = true
		c.pool.failed()
	}
	return err
}

// Err makes the pool close a connection to a replica rather than keep it.
func (c *watchedConn) Err() error {
	if c.readonly {
		return fmt.Errorf("%s: %w", c.addr, errNotMaster)
	}
	return c.Conn.Err()
}

func (c *watchedConn) Do(cmd string, args ...any) (any, error) {
	if sessionWrites[cmd] {
		if err := c.noReplica(c.addr); err != nil {
			c.traceRefused(err, cmd, args)
			return nil, err
		}
	}
	start := time.Now()
	v, err := c.Conn.Do(cmd, args...)
	if c.times != nil {
		c.times.Observe(time.Since(start).Seconds())
	}
	if c.trace != nil {
		c.traceDone(cmd, args, v, err, time.Since(start))
	}
	if err == nil && c.replicated != nil && sessionWritesDone[cmd] {
		if err := c.waitReplicated(); err != nil {
			return nil, err
		}
	}
	return v, c.check(err)
}

// sessionWritesDone end scs/redisstore's writes: their reply is what the
// store reports, so it waits until a replica has them.
var sessionWritesDone = map[string]bool{"EXEC": true, "DEL": true}

// waitReplicated waits for a replica by the borrower's limit (or one
// command's time when it set none).
func (c *watchedConn) waitReplicated() error {
	lim := c.nc.limit
	if lim.IsZero() {
		lim = time.Now().Add(DefaultTimeout)
	}
	ctx, cancel := context.WithDeadline(context.Background(), lim)
	defer cancel()
	return c.replicated(ctx, c.addr)
}

// handshakeCommands are the ones only handshake sends.
var handshakeCommands = map[string]bool{"AUTH": true, "CLIENT": true, "SELECT": true}

// sessionWrites start scs/redisstore's writes (MULTI, DEL): one refused for
// want of a replica is refused before anything is buffered.
var sessionWrites = map[string]bool{"MULTI": true, "DEL": true}

func (c *watchedConn) Send(cmd string, args ...any) error {
	if sessionWrites[cmd] {
		if err := c.noReplica(c.addr); err != nil {
			c.traceRefused(err, cmd, args)
			return err
		}
	}
	if c.trace != nil {
		c.queued = append(c.queued, redistrace.Command{Args: traceArgs(cmd, args), Queued: true}) // its reply comes with the next Do
	}
	return c.check(c.Conn.Send(cmd, args...))
}

// traceDone lists what Send queued and the command Do sent, which carries
// the reply and the time; Do("") sends nothing, and its reply is the last
// queued command's (the DISCARD redigo sends when it returns a connection
// whose MULTI was refused).
func (c *watchedConn) traceDone(cmd string, args []any, v any, err error, took time.Duration) {
	if cmd == "" && len(c.queued) > 0 {
		if replies, ok := v.([]any); ok && err == nil && len(replies) > 0 { // every reply Send waited for
			v = replies[len(replies)-1]
			err, _ = v.(redis.Error)
		}
		last := &c.queued[len(c.queued)-1]
		last.Queued, last.Reply, last.Took = false, traceReply(v, err), took
	}
	for _, q := range c.queued {
		c.trace.Add(q)
	}
	clear(c.queued)
	c.queued = c.queued[:0]
	if cmd != "" {
		c.trace.Add(redistrace.Command{Args: redistrace.Redact(traceArgs(cmd, args)), Reply: traceReply(v, err), Took: took,
			Handshake: handshakeCommands[cmd]})
	}
}

// traceRefused lists a command refused before it was sent as not sent.
func (c *watchedConn) traceRefused(err error, cmd string, args []any) {
	if c.trace == nil {
		return
	}
	why := err.Error()
	if r, ok := errors.AsType[*redistrace.Refusal](err); ok {
		why = r.Why
	}
	c.trace.Add(redistrace.Command{Args: redistrace.Redact(traceArgs(cmd, args)), Unsent: true, Reply: "not sent: " + why})
}

// traceArgs are a command's arguments as redigo writes them.
func traceArgs(cmd string, args []any) []string {
	out := make([]string, 0, 1+len(args))
	out = append(out, cmd)
	for _, a := range args {
		switch a := a.(type) {
		case string:
			out = append(out, a)
		case []byte:
			out = append(out, string(a))
		case int64:
			out = append(out, strconv.FormatInt(a, 10))
		case int:
			out = append(out, strconv.Itoa(a))
		case float64:
			out = append(out, strconv.FormatFloat(a, 'g', -1, 64))
		default:
			out = append(out, fmt.Sprint(a))
		}
	}
	return out
}

// traceReply is a redigo reply as a trace shows it (redistrace's words).
func traceReply(v any, err error) string {
	if err != nil {
		if rerr, ok := errors.AsType[redis.Error](err); ok {
			word, _, _ := strings.Cut(string(rerr), " ")
			return "error " + word
		}
		return "failed"
	}
	switch v := v.(type) {
	case nil:
		return "(nil)"
	case int64:
		return strconv.FormatInt(v, 10)
	case string:
		return v
	case []byte:
		if len(v) <= 8 {
			return string(v)
		}
		return redistrace.Size(len(v))
	case []any:
		if len(v) == 0 || len(v) > 3 {
			return strconv.Itoa(len(v)) + " items"
		}
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = traceReply(x, nil)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return "?"
}

func (c *watchedConn) Flush() error { return c.check(c.Conn.Flush()) }

func (c *watchedConn) Receive() (any, error) {
	v, err := c.Conn.Receive()
	return v, c.check(err)
}

// DefaultPoolSize is how many connections the session pool opens at most
// (-redis-pool): a session call holds one for a round trip, so a few dozen
// serve a class of 200 at full speed (docs/reliability.md has the figures).
const DefaultPoolSize = 64

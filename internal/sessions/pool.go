package sessions

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/redis/rueidis"
)

// ParseURL reads a Redis URL (redis://, rediss:// or unix://, with user,
// password and database) the way rueidis does. Both clients take their
// options from it, so sessions and everything else reach the same server
// and database: redigo's own parser would ignore ?db= and refuse unix://.
// Its errors leave the URL out, since the URL may hold a password.
func ParseURL(s string) (rueidis.ClientOption, error) {
	opt, err := rueidis.ParseURL(s)
	if uerr, ok := errors.AsType[*url.Error](err); ok {
		err = uerr.Err
	}
	return opt, err
}

// NewPool returns the redigo pool that scs/redisstore needs, for the same
// Redis URL as the rueidis client (see ParseURL).
//
// Every dial, write and read is bounded by a second, so a stopped or hung
// Redis turns into an error instead of a hung request.
//
// Connections that sat idle while Redis restarted are dead. The pool checks
// an idle connection with a PING before lending it when it is older than 5 s,
// or when any connection has failed since it was last used: after the first
// failure that a restart causes, the rest of the idle connections are tested
// instead of each failing one request (RetryStore retries that first one).
func NewPool(redisURL string) (*redis.Pool, error) {
	opt, err := ParseURL(redisURL)
	if err != nil {
		return nil, err
	}
	network, addr := "tcp", opt.InitAddress[0]
	if strings.HasPrefix(redisURL, "unix:") {
		network = "unix"
	}
	dialOptions := []redis.DialOption{
		redis.DialConnectTimeout(time.Second),
		redis.DialReadTimeout(time.Second),
		redis.DialWriteTimeout(time.Second),
		redis.DialDatabase(opt.SelectDB),
		redis.DialUsername(opt.Username),
		redis.DialPassword(opt.Password),
	}
	if opt.TLSConfig != nil {
		dialOptions = append(dialOptions, redis.DialUseTLS(true), redis.DialTLSConfig(opt.TLSConfig))
	}
	var lastFailure atomic.Int64 // unix nanoseconds of the last connection error
	return &redis.Pool{
		// Up to one connection per request in flight is kept: with fewer, a
		// burst of 200 concurrent requests closed and redialled a Redis
		// connection for about one request in seven (go tool task bench).
		MaxIdle:     256,
		IdleTimeout: 4 * time.Minute,
		Dial: func() (redis.Conn, error) {
			c, err := redis.Dial(network, addr, dialOptions...)
			if err != nil {
				lastFailure.Store(time.Now().UnixNano())
				return nil, err
			}
			return &watchedConn{Conn: c, lastFailure: &lastFailure}, nil
		},
		TestOnBorrow: func(c redis.Conn, idleSince time.Time) error {
			if time.Since(idleSince) < 5*time.Second && idleSince.UnixNano() > lastFailure.Load() {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}, nil
}

// watchedConn records when a connection breaks (an I/O error, not an error
// reply from Redis), so the pool knows its idle connections may be dead too.
type watchedConn struct {
	redis.Conn
	lastFailure *atomic.Int64
}

func (c *watchedConn) check(err error) error {
	if err != nil && c.Conn.Err() != nil {
		c.lastFailure.Store(time.Now().UnixNano())
	}
	return err
}

func (c *watchedConn) Do(cmd string, args ...any) (any, error) {
	v, err := c.Conn.Do(cmd, args...)
	return v, c.check(err)
}

func (c *watchedConn) Send(cmd string, args ...any) error { return c.check(c.Conn.Send(cmd, args...)) }

func (c *watchedConn) Flush() error { return c.check(c.Conn.Flush()) }

func (c *watchedConn) Receive() (any, error) {
	v, err := c.Conn.Receive()
	return v, c.check(err)
}

// RetryStore retries a session read, write or delete once when it failed
// because the pooled connection it used was dead (Redis restarted since the
// connection was last used). All three are idempotent: the retry sends the
// same GET, the same SET of the same bytes, the same DEL. A timeout is not
// retried: Redis is hung, and a second wait would only double the user's.
//
// It is the outermost store, and implements scs.CtxStore so that a request
// whose context has ended is not retried.
type RetryStore struct {
	scs.Store
}

// Find implements scs.Store.
func (s RetryStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit implements scs.Store.
func (s RetryStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete implements scs.Store.
func (s RetryStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// FindCtx implements scs.CtxStore.
func (s RetryStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	b, found, err := s.Store.Find(token)
	if deadConn(ctx, err) {
		b, found, err = s.Store.Find(token)
	}
	return b, found, err
}

// CommitCtx implements scs.CtxStore.
func (s RetryStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	err := s.Store.Commit(token, b, expiry)
	if deadConn(ctx, err) {
		err = s.Store.Commit(token, b, expiry)
	}
	return err
}

// DeleteCtx implements scs.CtxStore.
func (s RetryStore) DeleteCtx(ctx context.Context, token string) error {
	err := s.Store.Delete(token)
	if deadConn(ctx, err) {
		err = s.Store.Delete(token)
	}
	return err
}

// deadConn reports an error that a fresh connection may not have: the peer
// closed or reset the connection. Timeouts and Redis error replies are not.
func deadConn(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

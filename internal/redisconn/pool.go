package redisconn

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

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

// Package redisconn owns the app's connection to Redis: it reads the Redis
// URL, builds the one client (rueidis) that sessions and everything else go
// through, bounds how long a command and a request may wait, and says which
// errors mean "Redis cannot serve right now" (see Unavailable). Nothing else
// in the app decides that.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/rueidis"
)

// ParseURL reads a Redis URL (redis://, rediss:// or unix://, with user,
// password and database) the way rueidis does. Its errors leave the URL
// out, since the URL may hold a password.
func ParseURL(s string) (rueidis.ClientOption, error) {
	opt, err := rueidis.ParseURL(s)
	if uerr, ok := errors.AsType[*url.Error](err); ok {
		err = uerr.Err
	}
	return opt, err
}

// Connect opens the rueidis client for redisURL and checks that Redis
// answers, failing fast with one line that says what to do. Every command
// sent through the client is bounded by DefaultTimeout (see Bound).
//
// It is the one place the client is built: options (client-side caching,
// hooks) belong here.
func Connect(ctx context.Context, redisURL string, options ...Option) (rueidis.Client, error) {
	opt, err := ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("bad Redis URL %s: %w", Redact(redisURL), err)
	}
	for _, o := range options {
		o(&opt)
	}
	// Requests that meet a broken connection wait for one dial, whoever
	// started it and whatever their own deadline: the dial (with TLS and
	// the handshake) must fit in what is left of a request's budget.
	opt.Dialer.Timeout = DialTimeout
	opt.ConnWriteTimeout = DefaultTimeout // also how soon a background PING gives a silent connection up
	// Client-side caching stays on: every request of a logged-in session reads
	// its account (accounts.Store.Current), and Redis invalidates the copy on
	// every instance when the account changes.
	sentinel := opt.Sentinel.MasterSet != ""
	if sentinel {
		sentinelOptions(&opt)
	}
	hint := fmt.Sprintf("no Redis answers at %s: start one with `go tool task run` (or `redis-server`), or point -redis/REDIS_URL at yours", Redact(redisURL))
	rdb, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, errors.New(hint)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := rdb.Do(pingCtx, rdb.B().Ping().Build()).Error(); err != nil {
		rdb.Close()
		return nil, errors.New(hint)
	}
	if sentinel {
		// Every command goes through the gate, the session store's too:
		// none reaches a master that the sentinels are replacing.
		rdb = gateFailovers(rdb, opt)
	}
	return Bound(rdb, DefaultTimeout), nil
}

// Option sets what a Redis URL cannot say (a sentinel's own password).
type Option func(*rueidis.ClientOption)

// DialTimeout bounds a new connection: TCP, TLS and the HELLO handshake
// take a few round trips, well under this even to a Redis in another
// building.
const DialTimeout = 500 * time.Millisecond

// Redact hides a password in a Redis URL before it is logged.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(one that does not parse)"
	}
	return u.Redacted()
}

package redisconn

import (
	"context"
	"time"

	"github.com/redis/rueidis"
)

// DefaultTimeout is how long one command may take. Redis answers in well
// under a millisecond on a healthy network, so this only ever cuts an outage
// short; with it, a request meets a dead Redis as a 503 within about a second.
const DefaultTimeout = time.Second

// Bound returns c with every Do, DoMulti, DoCache and DoMultiCache bounded
// by timeout (or by the caller's deadline, if that is sooner). Blocking
// commands (BLPOP, XREAD BLOCK, ...), pub/sub (Receive), streams and
// dedicated connections are passed through untouched: they wait by design.
//
// rueidis waits as long as the context allows, and retries read-only commands
// on a connection error until the context ends: with a request context that
// has no deadline, a stopped or hung Redis would hold the request for ever.
// Bounding each command (rather than the whole request) leaves slow work that
// is not Redis (bcrypt) and long-lived streams alone.
func Bound(c rueidis.Client, timeout time.Duration) rueidis.Client {
	return bounded{Client: c, timeout: timeout}
}

type bounded struct {
	rueidis.Client
	timeout time.Duration
}

// limit derives a context that ends after the timeout, unless ctx ends sooner.
func (b bounded) limit(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= b.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, b.timeout)
}

func (b bounded) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if cmd.IsBlock() {
		return b.Client.Do(ctx, cmd)
	}
	ctx, cancel := b.limit(ctx)
	defer cancel()
	return b.Client.Do(ctx, cmd)
}

func (b bounded) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	for _, cmd := range multi {
		if cmd.IsBlock() {
			return b.Client.DoMulti(ctx, multi...)
		}
	}
	ctx, cancel := b.limit(ctx)
	defer cancel()
	return b.Client.DoMulti(ctx, multi...)
}

func (b bounded) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	ctx, cancel := b.limit(ctx)
	defer cancel()
	return b.Client.DoCache(ctx, cmd, ttl)
}

func (b bounded) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	ctx, cancel := b.limit(ctx)
	defer cancel()
	return b.Client.DoMultiCache(ctx, multi...)
}

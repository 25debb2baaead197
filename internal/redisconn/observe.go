package redisconn

import (
	"context"
	"time"

	"github.com/redis/rueidis"
)

// Observer records how long a Redis call took, in seconds (a Prometheus
// histogram is one).
type Observer interface{ Observe(seconds float64) }

// Timed returns c with each call's time observed as the caller waited for it
// (a pipeline counts once); blocking commands and pub/sub pass through.
func Timed(c rueidis.Client, o Observer) rueidis.Client { return timed{Client: c, o: o} }

type timed struct {
	rueidis.Client
	o Observer
}

func (t timed) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	start := time.Now()
	res := t.Client.Do(ctx, cmd)
	t.o.Observe(time.Since(start).Seconds())
	return res
}

func (t timed) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	start := time.Now()
	res := t.Client.DoMulti(ctx, multi...)
	t.o.Observe(time.Since(start).Seconds())
	return res
}

func (t timed) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	start := time.Now()
	res := t.Client.DoCache(ctx, cmd, ttl)
	t.o.Observe(time.Since(start).Seconds())
	return res
}

func (t timed) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	start := time.Now()
	res := t.Client.DoMultiCache(ctx, multi...)
	t.o.Observe(time.Since(start).Seconds())
	return res
}

// FailoverGateClosed reports whether the Sentinel failover gate of a client
// Connect returned refuses commands now (false without Sentinel).
func FailoverGateClosed(c rueidis.Client) func() bool {
	if b, ok := c.(bounded); ok {
		c = b.Client
	}
	g, ok := c.(*failoverGate)
	if !ok {
		return func() bool { return false }
	}
	return func() bool { return g.refuse() != nil }
}

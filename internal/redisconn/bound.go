package redisconn

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// DefaultTimeout is how long one command may take: Redis answers in well
// under a millisecond, so this only cuts an outage short.
const DefaultTimeout = time.Second

// Bound returns c with each command ended by timeout, the budget (WithBudget)
// or the caller's deadline: rueidis otherwise waits (and retries reads) as
// long as the context allows. Blocking commands and pub/sub pass.
func Bound(c rueidis.Client, timeout time.Duration) rueidis.Client {
	return bounded{Client: c, timeout: timeout}
}

type bounded struct {
	rueidis.Client
	timeout time.Duration
}

// RequestBudget bounds all of one request's Redis work, so a hung Redis
// cannot hold a request of several commands for seconds.
const RequestBudget = 1500 * time.Millisecond

// budget is what is left of a request's time for Redis, in nanoseconds.
type budget struct{ left atomic.Int64 }

type budgetKey struct{}

// WithBudget gives the Redis work done with ctx d in all, spent by each
// command through a Bound client; a new budget replaces an old one.
func WithBudget(ctx context.Context, d time.Duration) context.Context {
	b := &budget{}
	b.left.Store(int64(d))
	return context.WithValue(ctx, budgetKey{}, b)
}

// deadline is when a command sent now must have ended: the soonest of
// timeout, the budget's end and ctx's deadline.
func deadline(ctx context.Context, timeout time.Duration) (time.Time, spending) {
	bud, _ := ctx.Value(budgetKey{}).(*budget)
	if bud != nil {
		timeout = min(timeout, time.Duration(bud.left.Load()))
	}
	start := time.Now()
	lim := start.Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(lim) {
		lim = dl
	}
	return lim, spending{bud, start}
}

// spending is one command's draw on a budget (none when bud is nil).
type spending struct {
	bud   *budget
	start time.Time
}

func (s spending) done() {
	if s.bud != nil {
		s.bud.left.Add(-int64(time.Since(s.start)))
	}
}

// limit derives a context that ends at deadline's time, unless ctx ends
// sooner. done records the time spent.
func limit(ctx context.Context, timeout time.Duration) (_ context.Context, done func()) {
	lim, spend := deadline(ctx, timeout)
	if dl, ok := ctx.Deadline(); ok && !dl.After(lim) {
		return ctx, spend.done
	}
	ctx, cancel := context.WithDeadline(ctx, lim)
	return ctx, func() { cancel(); spend.done() }
}

func (b bounded) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if cmd.IsBlock() {
		return b.Client.Do(ctx, cmd)
	}
	ctx, cancel := limit(ctx, b.timeout)
	defer cancel()
	return b.Client.Do(ctx, cmd)
}

func (b bounded) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	for _, cmd := range multi {
		if cmd.IsBlock() {
			return b.Client.DoMulti(ctx, multi...)
		}
	}
	ctx, cancel := limit(ctx, b.timeout)
	defer cancel()
	return b.Client.DoMulti(ctx, multi...)
}

func (b bounded) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	ctx, cancel := limit(ctx, b.timeout)
	defer cancel()
	return b.Client.DoCache(ctx, cmd, ttl)
}

func (b bounded) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	ctx, cancel := limit(ctx, b.timeout)
	defer cancel()
	return b.Client.DoMultiCache(ctx, multi...)
}

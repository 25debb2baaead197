package redisconn

import (
	"context"
	"sync"
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
	ctx, cancel := limitLazily(ctx, b.timeout)
	defer cancel()
	return b.Client.DoCache(ctx, cmd, ttl)
}

func (b bounded) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	ctx, cancel := limitLazily(ctx, b.timeout)
	defer cancel()
	return b.Client.DoMultiCache(ctx, multi...)
}

// limitLazily is limit for commands the client-side cache may answer: rueidis
// answers a hit without looking at ctx (pipe.DoCache: Flight, then NewResult),
// so the deadline's timer is made only when a miss waits on it. A timer per
// credential check was 3 % of a page's CPU.
func limitLazily(ctx context.Context, timeout time.Duration) (_ context.Context, done func()) {
	lim, spend := deadline(ctx, timeout)
	if dl, ok := ctx.Deadline(); ok && !dl.After(lim) {
		return ctx, spend.done
	}
	l := &lazyDeadline{Context: ctx, at: lim}
	return l, func() { l.stop(); spend.done() }
}

// lazyDeadline is context.WithDeadline(Context, at), made at the first call
// of Done or Err; Deadline and Value need no timer.
type lazyDeadline struct {
	context.Context
	at      time.Time
	timed   atomic.Pointer[context.Context] // the WithDeadline context, once made
	mu      sync.Mutex
	cancel  context.CancelFunc
	stopped bool
}

func (l *lazyDeadline) Deadline() (time.Time, bool) { return l.at, true }
func (l *lazyDeadline) Done() <-chan struct{}       { return l.make().Done() }
func (l *lazyDeadline) Err() error                  { return l.make().Err() }

// Value asks the timed context once it exists, so that a context derived
// from this one finds its cancellation (context's parentCancelCtx).
func (l *lazyDeadline) Value(key any) any {
	if t := l.timed.Load(); t != nil {
		return (*t).Value(key)
	}
	return l.Context.Value(key)
}

func (l *lazyDeadline) make() context.Context {
	if t := l.timed.Load(); t != nil {
		return *t
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if t := l.timed.Load(); t != nil {
		return *t
	}
	ctx, cancel := context.WithDeadline(l.Context, l.at)
	if l.stopped {
		cancel() // asked after the command ended: answer as a cancelled WithDeadline does
	}
	l.cancel = cancel
	l.timed.Store(&ctx)
	return ctx
}

// stop is the CancelFunc: it ends the timer if one was made.
func (l *lazyDeadline) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.cancel != nil {
		l.cancel()
	}
}

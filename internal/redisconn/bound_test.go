package redisconn_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

func newClient(t *testing.T, rs *redistest.Server, timeout time.Duration) rueidis.Client {
	t.Helper()
	c := rs.Client(t)
	return redisconn.Bound(c, timeout)
}

// A command to a hung Redis gives up after the bound, even a read-only one
// that rueidis would otherwise retry for as long as the context lives.
func TestCommandToHungRedisEndsAtTheBound(t *testing.T) {
	rs := redistest.Start(t)
	c := newClient(t, rs, 200*time.Millisecond)
	rs.Pause()
	defer rs.Resume()
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"GET", func() error { return c.Do(context.Background(), c.B().Get().Key("k").Build()).Error() }},
		{"SET", func() error { return c.Do(context.Background(), c.B().Set().Key("k").Value("v").Build()).Error() }},
		{"pipeline", func() error {
			return c.DoMulti(context.Background(), c.B().Get().Key("a").Build(), c.B().Get().Key("b").Build())[0].Error()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.do()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want context.DeadlineExceeded", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("took %v, want about the 200ms bound", took)
			}
		})
	}
}

// Blocking commands wait as long as they ask to: the bound is for commands
// that should answer at once.
func TestBlockingCommandIsNotCut(t *testing.T) {
	rs := redistest.Start(t)
	c := newClient(t, rs, 100*time.Millisecond)
	err := c.Do(context.Background(), c.B().Blpop().Key("empty").Timeout(0.5).Build()).Error()
	if !rueidis.IsRedisNil(err) {
		t.Errorf("BLPOP with a 0.5 s timeout through a 100 ms bound: %v, want its own timeout (nil reply)", err)
	}
}

// A caller's own, shorter deadline still applies.
func TestCallerDeadlineIsKept(t *testing.T) {
	rs := redistest.Start(t)
	c := newClient(t, rs, time.Hour)
	rs.Pause()
	defer rs.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Do(ctx, c.B().Get().Key("k").Build()).Error(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the caller's deadline", err)
	}
}

// A request's commands share one budget: against a hung Redis, three
// commands in turn give up when the budget is spent, not after three
// per-command limits. Time the request spends on other work is not counted.
func TestCommandsShareTheRequestBudget(t *testing.T) {
	rs := redistest.Start(t)
	c := newClient(t, rs, time.Second)
	get := func(ctx context.Context) error { return c.Do(ctx, c.B().Ping().Build()).Error() }

	t.Run("a hung Redis spends it once", func(t *testing.T) {
		rs.Pause()
		defer rs.Resume()
		ctx := redisconn.WithBudget(context.Background(), 300*time.Millisecond)
		start := time.Now()
		for i := range 3 {
			if err := get(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("command %d: %v, want context.DeadlineExceeded", i, err)
			}
		}
		if took := time.Since(start); took > 900*time.Millisecond {
			t.Errorf("three commands took %v with a 300ms budget (the per-command limit is 1s)", took)
		}
	})
	t.Run("time spent elsewhere is not counted", func(t *testing.T) {
		_ = get(context.Background()) // a connection, after the pause above
		ctx := redisconn.WithBudget(context.Background(), 300*time.Millisecond)
		for i := range 3 {
			time.Sleep(200 * time.Millisecond) // bcrypt, say
			if err := get(ctx); err != nil {
				t.Errorf("command %d after 200ms of other work: %v", i, err)
			}
		}
	})
	t.Run("a renewed budget starts afresh", func(t *testing.T) {
		rs.Pause()
		ctx := redisconn.WithBudget(context.Background(), 100*time.Millisecond)
		_ = get(ctx)
		rs.Resume()
		if err := get(ctx); err == nil {
			t.Error("a command after the budget was spent succeeded")
		}
		if err := get(redisconn.WithBudget(ctx, 100*time.Millisecond)); err != nil {
			t.Errorf("with a new budget: %v", err)
		}
	})
}

// A read the client-side cache answers makes no deadline timer: rueidis
// does not look at the context on a hit, so the bound costs only what it
// records, measured against the same read through the bare client.
func TestCacheHitMakesNoTimer(t *testing.T) {
	rs := redistest.Start(t)
	bare, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}}) // caching on
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	c := redisconn.Bound(bare, time.Second)
	if err := c.Do(t.Context(), c.B().Set().Key("k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	// Cancellable, with a budget, as a request's context is.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctx = redisconn.WithBudget(ctx, redisconn.RequestBudget)
	hit := func(c rueidis.Client) func() {
		return func() {
			res := c.DoCache(ctx, c.B().Get().Key("k").Cache(), time.Minute)
			if v, err := res.ToString(); err != nil || v != "v" || !res.IsCacheHit() {
				t.Fatalf("GET k: %q, %v, cache hit %v; want \"v\" from the cache", v, err, res.IsCacheHit())
			}
		}
	}
	_ = c.DoCache(ctx, c.B().Get().Key("k").Cache(), time.Minute) // now cached
	bareAllocs := testing.AllocsPerRun(200, hit(bare))
	boundAllocs := testing.AllocsPerRun(200, hit(c))
	// The bound's own record (its context and the function that ends it);
	// a timer (context.WithDeadline) would add its context, timer and the
	// parent's record of the child.
	if extra := boundAllocs - bareAllocs; extra > 2 {
		t.Errorf("a cache hit through the bound allocates %.0f more than the bare client's (%.0f), want at most 2: a deadline timer made for a hit?", extra, bareAllocs)
	}
}

// The lazily made deadline still ends a read the cache cannot answer.
func TestCacheMissToHungRedisEndsAtTheBound(t *testing.T) {
	rs := redistest.Start(t)
	c := newClient(t, rs, 200*time.Millisecond)
	rs.Pause()
	defer rs.Resume()
	start := time.Now()
	err := c.DoCache(context.Background(), c.B().Get().Key("k").Cache(), time.Minute).Error()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v, want about the 200ms bound", took)
	}
}

// The lazily made deadline answers as context.WithDeadline does: it ends at
// its time, a context derived from it ends with it, the parent's end
// reaches it, and once the command is done it reads as cancelled.
func TestLazyDeadlineIsAWithDeadline(t *testing.T) {
	t.Run("ends at its time", func(t *testing.T) {
		ctx, done := redisconn.LimitLazily(context.Background(), 50*time.Millisecond)
		defer done()
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > 50*time.Millisecond {
			t.Errorf("Deadline() = %v, %v; want within 50ms", dl, ok)
		}
		if err := ctx.Err(); err != nil {
			t.Errorf("before its time: Err() = %v", err)
		}
		child, cancel := context.WithCancel(ctx)
		defer cancel()
		<-child.Done()
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) {
			t.Errorf("after its time: Err() = %v, derived %v; want context.DeadlineExceeded", ctx.Err(), child.Err())
		}
	})
	t.Run("ends with its parent", func(t *testing.T) {
		parent, cancel := context.WithCancel(context.WithValue(context.Background(), valueKey{}, "v"))
		ctx, done := redisconn.LimitLazily(parent, time.Hour)
		defer done()
		if ctx.Value(valueKey{}) != "v" {
			t.Error("a value of the parent is lost")
		}
		cancel()
		<-ctx.Done()
		if !errors.Is(ctx.Err(), context.Canceled) || ctx.Value(valueKey{}) != "v" {
			t.Errorf("Err() = %v, value %v after the parent's end; want context.Canceled, v", ctx.Err(), ctx.Value(valueKey{}))
		}
	})
	t.Run("cancelled when done, even if first asked then", func(t *testing.T) {
		for _, ask := range []bool{true, false} {
			ctx, done := redisconn.LimitLazily(context.Background(), time.Hour)
			if ask {
				_ = ctx.Done()
			}
			done()
			<-ctx.Done()
			if !errors.Is(ctx.Err(), context.Canceled) {
				t.Errorf("asked before done %v: Err() = %v, want context.Canceled", ask, ctx.Err())
			}
		}
	})
	t.Run("a sooner deadline of the caller stays", func(t *testing.T) {
		parent, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		ctx, done := redisconn.LimitLazily(parent, time.Hour)
		defer done()
		if ctx != parent {
			t.Error("a context was made though the caller's deadline comes first")
		}
	})
}

type valueKey struct{}

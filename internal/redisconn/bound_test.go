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

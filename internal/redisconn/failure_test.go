package redisconn_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// Unavailable tells an outage from a bug, whichever client met it.
func TestUnavailableTellsOutageFromBug(t *testing.T) {
	rs := redistest.Start(t)
	rdb, err := redisconn.Connect(t.Context(), rs.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	pool := newPool(t, rs.URL())
	ctx := context.Background()

	t.Run("a command Redis refuses is a bug, from either client", func(t *testing.T) {
		rerr := rdb.Do(ctx, rdb.B().Arbitrary("NO-SUCH-COMMAND").Build()).Error()
		c := pool.Get()
		_, gerr := c.Do("NO-SUCH-COMMAND")
		c.Close()
		for _, err := range []error{rerr, gerr} {
			if err == nil {
				t.Fatal("no error")
			}
			if kind, ok := redisconn.Unavailable(err); ok {
				t.Errorf("%v: unavailable (%s), want a bug", err, kind)
			}
		}
	})
	t.Run("an error reply that means wait is unavailable, from either client", func(t *testing.T) {
		for _, err := range []error{redis.Error("LOADING Redis is loading the dataset in memory"),
			fmt.Errorf("find: %w", redis.Error("MASTERDOWN Link with MASTER is down"))} {
			if _, ok := redisconn.Unavailable(err); !ok {
				t.Errorf("%v: not unavailable", err)
			}
		}
		if _, ok := redisconn.Unavailable(redis.Error("BUSYGROUP Consumer Group name already exists")); ok {
			t.Error("BUSYGROUP (a bug) counted as BUSY")
		}
	})
	t.Run("a hung Redis has timed out", func(t *testing.T) {
		rs.Pause()
		defer rs.Resume()
		err := rdb.Do(ctx, rdb.B().Get().Key("k").Build()).Error()
		if kind, ok := redisconn.Unavailable(err); kind != redisconn.TimedOut {
			t.Errorf("rueidis: %v: %q, %v; want %q", err, kind, ok, redisconn.TimedOut)
		}
		c := pool.Get()
		_, err = c.Do("GET", "k")
		c.Close()
		if kind, ok := redisconn.Unavailable(err); kind != redisconn.TimedOut {
			t.Errorf("redigo: %v: %q, %v; want %q", err, kind, ok, redisconn.TimedOut)
		}
	})
	t.Run("a stopped Redis refuses connections", func(t *testing.T) {
		rs.Stop()
		defer rs.Start()
		time.Sleep(50 * time.Millisecond)
		c := pool.Get()
		_, err := c.Do("GET", "k")
		c.Close()
		if kind, ok := redisconn.Unavailable(err); !ok {
			t.Errorf("redigo: %v: %q, %v; want unavailable", err, kind, ok)
		}
		err = rdb.Do(ctx, rdb.B().Get().Key("k").Build()).Error()
		if kind, ok := redisconn.Unavailable(err); !ok {
			t.Errorf("rueidis: %v: %q, %v; want unavailable", err, kind, ok)
		}
	})
}

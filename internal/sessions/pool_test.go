package sessions_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/redisstore"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
)

// After Redis restarts, every connection the pool kept is dead. The first
// session reads and writes still succeed: the store retries once on a dead
// connection, and the pool tests its other idle connections before lending
// them, instead of letting each fail a request of its own.
func TestStoreSurvivesRedisRestart(t *testing.T) {
	rs := redistest.Start(t)
	pool := sessions.NewPool(rs.URL())
	t.Cleanup(func() { pool.Close() })
	store := sessions.RetryStore{Store: redisstore.NewWithPrefix(pool, sessions.Prefix)}
	ctx := context.Background()
	if err := store.CommitCtx(ctx, "tok", []byte("v"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Several idle connections in the pool.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _, _, _ = store.FindCtx(ctx, "tok") })
	}
	wg.Wait()
	if n := pool.Stats().IdleCount; n < 2 {
		t.Fatalf("only %d idle connections; the test needs several", n)
	}

	rs.Restart()

	for i := range 8 {
		b, found, err := store.FindCtx(ctx, "tok")
		if err != nil || !found || string(b) != "v" {
			t.Fatalf("find %d after the restart: %q, %v, %v", i, b, found, err)
		}
	}
	if err := store.CommitCtx(ctx, "tok", []byte("w"), time.Now().Add(time.Hour)); err != nil {
		t.Errorf("commit after the restart: %v", err)
	}
}

// A hung Redis is not retried: the answer comes after one timeout, not two.
func TestStoreGivesUpOnHungRedisAfterOneTimeout(t *testing.T) {
	rs := redistest.Start(t)
	pool := sessions.NewPool(rs.URL())
	t.Cleanup(func() { pool.Close() })
	store := sessions.RetryStore{Store: redisstore.NewWithPrefix(pool, sessions.Prefix)}
	rs.Pause()
	defer rs.Resume()
	start := time.Now()
	if _, _, err := store.FindCtx(context.Background(), "tok"); err == nil {
		t.Fatal("find on a hung Redis succeeded")
	}
	if took := time.Since(start); took > 1900*time.Millisecond {
		t.Errorf("find on a hung Redis took %v: retried after a timeout?", took)
	}
}

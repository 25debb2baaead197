package redisconn_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
)

// After Redis restarts, every connection the pool kept is dead. The first
// session reads and writes still succeed: the store retries once on a dead
// connection, and the pool tests its other idle connections before lending
// them, instead of letting each fail a request of its own.
func TestStoreSurvivesRedisRestart(t *testing.T) {
	rs := redistest.Start(t)
	pool := newPool(t, rs.URL())
	store := redisconn.RetryStore{Store: redisstore.NewWithPrefix(pool, sessions.Prefix)}
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
	pool := newPool(t, rs.URL())
	inner := &countingStore{Store: redisstore.NewWithPrefix(pool, sessions.Prefix)}
	store := redisconn.RetryStore{Store: inner}
	rs.Pause()
	defer rs.Resume()
	if _, _, err := store.FindCtx(context.Background(), "tok"); err == nil {
		t.Fatal("find on a hung Redis succeeded")
	}
	if inner.finds != 1 {
		t.Errorf("a find on a hung Redis was tried %d times, want once", inner.finds)
	}
}

// countingStore counts the finds that reach the store.
type countingStore struct {
	scs.Store
	finds int
}

func (c *countingStore) Find(token string) ([]byte, bool, error) {
	c.finds++
	return c.Store.Find(token)
}

func newPool(t *testing.T, redisURL string) *redis.Pool {
	t.Helper()
	pool, err := redisconn.NewPool(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return pool
}

// The session pool and the rueidis client read one URL alike, so sessions
// land where the scripts, the index and the panel look for them: the same
// database (redigo's own parser ignored ?db=) and a unix socket too.
func TestPoolAndClientReachTheSameDatabase(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "redis.sock")
	rs := redistest.Start(t, "--unixsocket", sock)
	for _, u := range []string{"redis://" + rs.Addr() + "/3", "redis://" + rs.Addr() + "?db=4", "unix://" + sock + "?db=5"} {
		store := redisstore.NewWithPrefix(newPool(t, u), sessions.Prefix)
		if err := store.Commit("tok", []byte("v"), time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("%s: commit: %v", u, err)
		}
		opt, err := redisconn.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		opt.DisableCache = true
		rdb, err := rueidis.NewClient(opt)
		if err != nil {
			t.Fatalf("%s: rueidis: %v", u, err)
		}
		got, err := rdb.Do(context.Background(), rdb.B().Getdel().Key(sessions.Key("tok")).Build()).ToString()
		rdb.Close()
		if got != "v" {
			t.Errorf("%s: rueidis reads %q, %v where the pool wrote the session", u, got, err)
		}
	}
}

// A bad URL is refused with a reason that does not repeat the URL, which
// may hold a password.
func TestBadURLErrorsHideThePassword(t *testing.T) {
	for _, u := range []string{"redis://:s3cret@localhost:63x9/0", "redis://:s3cret@localhost:6379/x", "http://:s3cret@localhost/"} {
		_, err := redisconn.NewPool(u)
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows the password: %v", u, err)
		}
	}
}

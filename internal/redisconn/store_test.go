package redisconn_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/redistrace"
)

func connect(t *testing.T, redisURL string) rueidis.Client {
	t.Helper()
	rdb, err := redisconn.Connect(t.Context(), redisconn.Config{URL: redisURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	return rdb
}

// newStore builds the session store as the app does: a redigo pool from
// the same config as the rueidis client rdb.
func newStore(t *testing.T, cfg redisconn.Config, rdb rueidis.Client) (redisconn.SessionStore, *redis.Pool) {
	t.Helper()
	pool, err := redisconn.NewPool(cfg, rdb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return redisconn.NewSessionStore(pool, "sess:"), pool
}

// fillIdle leaves n idle connections in the pool. It holds them all at
// once: calls made in parallel may all run on one connection on a fast
// machine.
func fillIdle(t *testing.T, pool *redis.Pool, n int) {
	t.Helper()
	var conns []redis.Conn
	for range n {
		c := pool.Get()
		if _, err := c.Do("PING"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
	if got := pool.Stats().IdleCount; got != n {
		t.Fatalf("%d idle connections, want %d", got, n)
	}
}

// Sessions are kept as scs/redisstore keeps them: one string per session
// at prefix+token, expiring when the session does.
func TestSessionStoreKeepsSessionsAsRedisstoreDoes(t *testing.T) {
	rs := redistest.Start(t)
	store, _ := newStore(t, redisconn.Config{URL: rs.URL()}, connect(t, rs.URL()))
	ctx := context.Background()
	expiry := time.Now().Add(time.Hour).Truncate(time.Millisecond)

	t.Run("a commit is a string with the session's expiry", func(t *testing.T) {
		if err := store.CommitCtx(ctx, "tok", []byte("v\x00\xff"), expiry); err != nil {
			t.Fatal(err)
		}
		if got := rs.MustDo("GET", "sess:tok"); got != "v\x00\xff" {
			t.Errorf("sess:tok = %q", got)
		}
		if got := rs.MustDo("PEXPIRETIME", "sess:tok"); got != strconv.FormatInt(expiry.UnixMilli(), 10) {
			t.Errorf("PEXPIRETIME = %s, want %d", got, expiry.UnixMilli())
		}
	})
	t.Run("find reads it back, and a missing one is not found", func(t *testing.T) {
		b, found, err := store.FindCtx(ctx, "tok")
		if err != nil || !found || string(b) != "v\x00\xff" {
			t.Errorf("find: %q, %v, %v", b, found, err)
		}
		if _, found, err := store.FindCtx(ctx, "nope"); found || err != nil {
			t.Errorf("find of a missing session: %v, %v", found, err)
		}
	})
	t.Run("a commit with an expiry already past deletes it", func(t *testing.T) {
		if err := store.CommitCtx(ctx, "tok", []byte("w"), time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := rs.MustDo("EXISTS", "sess:tok"); got != "0" {
			t.Errorf("EXISTS sess:tok = %s after a commit in the past", got)
		}
	})
	t.Run("delete removes it", func(t *testing.T) {
		_ = store.CommitCtx(ctx, "tok", []byte("v"), expiry)
		if err := store.DeleteCtx(ctx, "tok"); err != nil {
			t.Fatal(err)
		}
		if got := rs.MustDo("EXISTS", "sess:tok"); got != "0" {
			t.Errorf("EXISTS sess:tok = %s after delete", got)
		}
	})
}

// Each call is recorded in the request's trace as the commands redisstore
// sends, with their arguments: the pool's ROLE check on a new connection
// first, then MULTI, SET, PEXPIREAT (queued) and EXEC in one round trip.
func TestSessionStoreCallsAreTraced(t *testing.T) {
	rs := redistest.Start(t)
	store, _ := newStore(t, redisconn.Config{URL: rs.URL()}, connect(t, rs.URL()))
	ctx, tr := redistrace.Start(context.Background())
	_ = store.CommitCtx(ctx, "tok", []byte("value"), time.Now().Add(time.Hour))
	_, _, _ = store.FindCtx(ctx, "tok")
	_, _, _ = store.FindCtx(ctx, "nope")
	_ = store.DeleteCtx(ctx, "tok")
	var got []string
	tr.Each(func(c redistrace.Command) {
		if c.Args[0] == "PEXPIREAT" {
			c.Args[2] = "<ms>"
		}
		line := strings.Join(c.Args, " ")
		if !c.Queued {
			line += " → " + c.Reply
		}
		got = append(got, line)
	})
	want := []string{"ROLE → [master, 0, 0 items]", "MULTI", "SET sess:tok value", "PEXPIREAT sess:tok <ms>", "EXEC → [OK, 1]",
		"GET sess:tok → value", "GET sess:nope → (nil)", "DEL sess:tok → 1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("trace:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// After Redis restarts, every connection the pool kept is dead. The first
// session reads and writes still succeed: the store sends a call once more
// on a broken connection, and the pool checks its other idle connections
// before lending them, instead of letting each fail a request of its own.
func TestSessionStoreSurvivesRedisRestart(t *testing.T) {
	rs := redistest.Start(t)
	store, pool := newStore(t, redisconn.Config{URL: rs.URL()}, connect(t, rs.URL()))
	ctx := context.Background()
	if err := store.CommitCtx(ctx, "tok", []byte("v"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	fillIdle(t, pool, 8)

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
	rs.Restart()
	if err := store.DeleteCtx(ctx, "tok"); err != nil {
		t.Errorf("delete after a restart: %v", err)
	}
}

// redisstore takes no context, yet a request's budget bounds its session
// calls: against a hung Redis, three calls in turn give up when the budget
// is spent (each would wait up to the pool's one-second read timeout), and
// the error is an outage (a 503), as a timed-out rueidis command is.
func TestSessionStoreKeepsToTheRequestBudget(t *testing.T) {
	rs := redistest.Start(t)
	store, _ := newStore(t, redisconn.Config{URL: rs.URL()}, connect(t, rs.URL()))
	if err := store.CommitCtx(context.Background(), "tok", []byte("v"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rs.Pause()
	defer rs.Resume()
	ctx := redisconn.WithBudget(context.Background(), 300*time.Millisecond)
	start := time.Now()
	_, _, errFind := store.FindCtx(ctx, "tok")
	errCommit := store.CommitCtx(ctx, "tok", []byte("w"), time.Now().Add(time.Hour))
	errDelete := store.DeleteCtx(ctx, "tok")
	took := time.Since(start)
	for name, err := range map[string]error{"find": errFind, "commit": errCommit, "delete": errDelete} {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want context.DeadlineExceeded", name, err)
		}
		if kind, ok := redisconn.Unavailable(err); kind != redisconn.TimedOut || !ok {
			t.Errorf("%s: classified %q, %v; want %q", name, kind, ok, redisconn.TimedOut)
		}
	}
	if took > 900*time.Millisecond {
		t.Errorf("three calls took %v with a 300ms budget (the pool's read timeout is 1s)", took)
	}
	t.Run("without a budget, a call waits DefaultTimeout at most", func(t *testing.T) {
		start := time.Now()
		// The pool's read timeout is as long: either may end the wait.
		if _, _, err := store.FindCtx(context.Background(), "tok"); !isTimeout(err) {
			t.Errorf("find: %v, want a timeout", err)
		}
		if took := time.Since(start); took > redisconn.DefaultTimeout+500*time.Millisecond {
			t.Errorf("find took %v", took)
		}
	})
}

func isTimeout(err error) bool {
	kind, _ := redisconn.Unavailable(err)
	return kind == redisconn.TimedOut
}

// A server that is (or became) a replica serves no sessions: the pool
// checks ROLE on new connections, a READONLY reply closes the connection
// it came on, and after it the pool checks the others before lending them,
// so no read is served from the replica's copy.
func TestSessionStoreRefusesAReplica(t *testing.T) {
	master := redistest.Start(t)
	rs := redistest.Start(t)
	store, pool := newStore(t, redisconn.Config{URL: rs.URL()}, connect(t, rs.URL()))
	ctx := context.Background()
	if err := store.CommitCtx(ctx, "tok", []byte("v"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	fillIdle(t, pool, 4)

	// rs turns replica (a failover demoted it), with the session still in
	// its copy while it syncs, or from the master's own copy.
	master.MustDo("SET", "sess:tok", "v")
	rs.MustDo("REPLICAOF", "127.0.0.1", strings.TrimPrefix(master.Addr(), "127.0.0.1:"))

	t.Run("a write is refused as READONLY, an outage, and its connection closed", func(t *testing.T) {
		before := pool.Stats().ActiveCount
		err := store.CommitCtx(ctx, "tok", []byte("w"), time.Now().Add(time.Hour))
		if kind, ok := redisconn.Unavailable(err); kind != "READONLY" || !ok {
			t.Fatalf("commit on a replica: %v, classified %q; want READONLY", err, kind)
		}
		if after := pool.Stats().ActiveCount; after != before-1 {
			t.Errorf("connections %d -> %d: the one to the replica was kept", before, after)
		}
	})
	t.Run("then no read is served by the replica", func(t *testing.T) {
		for i := range 6 {
			_, _, err := store.FindCtx(ctx, "tok")
			if kind, _ := redisconn.Unavailable(err); kind != redisconn.NotMaster {
				t.Fatalf("find %d: %v, classified %q; want %q", i, err, kind, redisconn.NotMaster)
			}
		}
	})
}

// The session pool and the rueidis client read one config alike, so
// sessions land where the scripts, the index and the panel look for them:
// the same database, and a unix socket too.
func TestPoolAndClientReachTheSameDatabase(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "redis.sock")
	rs := redistest.Start(t, "--unixsocket", sock)
	for _, u := range []string{"redis://" + rs.Addr() + "/3", "redis://" + rs.Addr() + "?db=4", "unix://" + sock + "?db=5"} {
		rdb := connect(t, u)
		store, _ := newStore(t, redisconn.Config{URL: u}, rdb)
		if err := store.Commit("tok", []byte("v"), time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("%s: commit: %v", u, err)
		}
		got, err := rdb.Do(context.Background(), rdb.B().Getdel().Key("sess:tok").Build()).ToString()
		if got != "v" {
			t.Errorf("%s: rueidis reads %q, %v where the pool wrote the session", u, got, err)
		}
	}
}

// A bad URL is refused with a reason that does not repeat the URL, which
// may hold a password.
func TestBadURLErrorsHideThePassword(t *testing.T) {
	for _, u := range []string{"redis://:s3cret@localhost:63x9/0", "redis://:s3cret@localhost:6379/x", "http://:s3cret@localhost/"} {
		_, err := redisconn.Connect(t.Context(), redisconn.Config{URL: u})
		if err == nil {
			t.Errorf("%s: no error", u)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows the password: %v", u, err)
		}
		_, err = redisconn.NewPool(redisconn.Config{URL: u}, nil)
		if err == nil {
			t.Errorf("%s: no error from NewPool", u)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: NewPool's error shows the password: %v", u, err)
		}
	}
}

// Against a hung Redis, checking idle connections before lending them must
// not add up: once one check failed, the connections idle since are dropped
// unchecked, so a borrow costs one failed check and a dial (about 2 s with
// the pool's 1 s timeouts), not a second per idle connection.
func TestPoolChecksDoNotAddUpOnAHungRedis(t *testing.T) {
	rs := redistest.Start(t)
	_, pool := newStore(t, redisconn.Config{URL: rs.URL()}, connect(t, rs.URL()))
	const idle = 8
	fillIdle(t, pool, idle+1)
	rs.Pause()
	defer rs.Resume()
	// One command times out (a failure): the idle connections are suspect.
	c := pool.Get()
	if _, err := c.Do("GET", "k"); !isTimeout(err) {
		t.Fatalf("GET on a hung Redis: %v, want a timeout", err)
	}
	c.Close()

	start := time.Now()
	c = pool.Get()
	_, err := c.Do("GET", "k")
	c.Close()
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("borrowing with %d idle connections to a hung Redis took %v", idle, took)
	}
	if err == nil {
		t.Error("a command on a hung Redis succeeded")
	}
}

// The store keeps what it lends a call's connection through for the next
// call: calls at once each get their own connection's answers, and every
// connection goes back to the pool when its call ends, failed or not.
func TestSessionStoreCallsKeepToTheirConnection(t *testing.T) {
	rs := redistest.Start(t)
	store, pool := newStore(t, redisconn.Config{URL: rs.URL()}, connect(t, rs.URL()))
	ctx := context.Background()
	expiry := time.Now().Add(time.Hour)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				tok := "tok" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
				if err := store.CommitCtx(ctx, tok, []byte("value of "+tok), expiry); err != nil {
					t.Error(err)
					return
				}
				b, found, err := store.FindCtx(ctx, tok)
				if err != nil || !found || string(b) != "value of "+tok {
					t.Errorf("find %s: %q, %v, %v", tok, b, found, err)
					return
				}
				if _, found, _ := store.FindCtx(ctx, tok+"-none"); found {
					t.Errorf("find %s-none: found", tok)
				}
			}
		})
	}
	wg.Wait()
	if n := pool.ActiveCount(); n != pool.IdleCount() {
		t.Errorf("%d connections lent, %d idle: a call kept one", n-pool.IdleCount(), pool.IdleCount())
	}

	rs.Pause()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, _, err := store.FindCtx(short, "tok0-0")
	cancel()
	rs.Resume()
	if err == nil {
		t.Fatal("find on a paused Redis: no error")
	}
	if b, _, err := store.FindCtx(ctx, "tok0-0"); err != nil || string(b) != "value of tok0-0" {
		t.Errorf("find after a timed-out call: %q, %v", b, err)
	}
	if n := pool.ActiveCount(); n != pool.IdleCount() {
		t.Errorf("%d connections lent after a timed-out call", n-pool.IdleCount())
	}
}

// The pool opens at most Config.PoolSize connections. A call past the bound
// waits for one: on a healthy Redis it gets one and succeeds; on a hung one
// it gives up when its budget is spent, as a timed-out command does (a 503),
// or when its request ends, never later.
func TestSessionStoreWaitsForAConnectionWithinTheBudget(t *testing.T) {
	const size, calls = 2, 40
	rs := redistest.Start(t)
	store, pool := newStore(t, redisconn.Config{URL: rs.URL(), PoolSize: size}, connect(t, rs.URL()))
	expiry := time.Now().Add(time.Hour)
	most := watchPool(t, pool)

	t.Run("healthy: every call gets a connection in turn", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range calls {
			wg.Go(func() {
				tok := "tok" + strconv.Itoa(i)
				ctx := redisconn.WithBudget(context.Background(), redisconn.RequestBudget)
				if err := store.CommitCtx(ctx, tok, []byte(tok), expiry); err != nil {
					t.Errorf("commit %s: %v", tok, err)
				}
				if b, _, err := store.FindCtx(ctx, tok); err != nil || string(b) != tok {
					t.Errorf("find %s: %q, %v", tok, b, err)
				}
			})
		}
		wg.Wait()
	})

	t.Run("hung: a waiting call ends by its budget", func(t *testing.T) {
		rs.Pause()
		defer rs.Resume()
		// Each well below DefaultTimeout, with the slack a loaded machine needs.
		budgets := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
		var wg sync.WaitGroup
		for i := range calls {
			budget := budgets[i%len(budgets)]
			wg.Go(func() {
				ctx := redisconn.WithBudget(context.Background(), budget)
				start := time.Now()
				_, _, err := store.FindCtx(ctx, "tok0")
				took := time.Since(start)
				if kind, _ := redisconn.Unavailable(err); kind != redisconn.TimedOut {
					t.Errorf("find with a %v budget: %v (%q), want a timeout", budget, err, kind)
				}
				if took > budget+400*time.Millisecond {
					t.Errorf("find with a %v budget took %v", budget, took)
				}
			})
		}
		wg.Wait()
	})

	t.Run("hung: a waiting call ends with its request", func(t *testing.T) {
		rs.Pause()
		defer rs.Resume()
		var wg sync.WaitGroup
		for range size {
			wg.Go(func() { _, _, _ = store.FindCtx(context.Background(), "tok0") }) // hold the pool for DefaultTimeout
		}
		time.Sleep(50 * time.Millisecond)
		// Cancelled, with no deadline: its limit is DefaultTimeout's.
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, _, err := store.FindCtx(ctx, "tok0")
		if took := time.Since(start); err == nil || took > 500*time.Millisecond {
			t.Errorf("find whose request ended after 100ms: %v after %v", err, took)
		}
		wg.Wait()
	})

	rs.Resume()
	if b, _, err := store.FindCtx(context.Background(), "tok7"); err != nil || string(b) != "tok7" {
		t.Errorf("find after the hang: %q, %v", b, err)
	}
	if n := most(); n > size {
		t.Errorf("the pool had %d connections at once, want at most %d", n, size)
	}
}

// watchPool samples pool's connections (lent and idle) until the returned
// function is called, which gives the most seen at once.
func watchPool(t *testing.T, pool *redis.Pool) (most func() int) {
	t.Helper()
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		for {
			n = max(n, pool.ActiveCount())
			select {
			case <-stop:
				done <- n
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() int { close(stop); return <-done }
}

// A dial that the call's limit cuts short (Redis's port takes no new
// connection: its accept queue is full) ends the call cleanly: the dial's
// timer cancels its context as the call returns, after the store had reused
// the call's context for the next one (a nil dereference in the timer's
// goroutine, a data race under -race).
func TestSessionStoreDialCutByTheLimitEndsCleanly(t *testing.T) {
	addr := fullListener(t)
	rs := redistest.Start(t)
	store, _ := newStore(t, redisconn.Config{URL: "redis://" + addr + "/0"}, connect(t, rs.URL()))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				ctx := redisconn.WithBudget(context.Background(), 50*time.Millisecond)
				if _, _, err := store.FindCtx(ctx, "tok"); !isTimeout(err) {
					t.Errorf("find through a dial that cannot finish: %v, want a timeout", err)
				}
			}
		})
	}
	wg.Wait()
	time.Sleep(50 * time.Millisecond) // for a late timer
}

// fullListener is a loopback address whose listener never accepts and whose
// accept queue is full, so a dial to it waits for its deadline.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	for i := 0; ; i++ { // fill the queue
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
		if i > 16 {
			t.Skip("the listener's queue does not fill: dials cannot be made to wait")
		}
	}
	return addr
}

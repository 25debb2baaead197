package redisconn_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// Unavailable tells an outage from a bug, and names the outage, for errors
// met on a real redis-server put in each state.
func TestUnavailableTellsOutageFromBug(t *testing.T) {
	rs := redistest.Start(t, "--busy-reply-threshold", "100", "--enable-debug-command", "local")
	rdb := connect(t, rs.URL())
	ctx := context.Background()
	set := func() error { return rdb.Do(ctx, rdb.B().Set().Key("k").Value("v").Build()).Error() }

	t.Run("a command Redis does not know is a bug", func(t *testing.T) {
		err := rdb.Do(ctx, rdb.B().Arbitrary("NO-SUCH-COMMAND").Build()).Error()
		if kind, ok := redisconn.Unavailable(err); err == nil || ok {
			t.Errorf("%v: unavailable (%s), want a bug", err, kind)
		}
	})
	want := func(t *testing.T, err error, kind redisconn.Kind) {
		t.Helper()
		if got, ok := redisconn.Unavailable(err); !ok || got != kind {
			t.Errorf("%v: %q, %v; want %q", err, got, ok, kind)
		}
	}
	t.Run("a write at maxmemory with noeviction is OOM", func(t *testing.T) {
		rs.MustDo("CONFIG", "SET", "maxmemory-policy", "noeviction")
		rs.MustDo("CONFIG", "SET", "maxmemory", "1")
		defer rs.MustDo("CONFIG", "SET", "maxmemory", "0")
		want(t, set(), "OOM")
	})
	t.Run("a write to a replica is READONLY", func(t *testing.T) {
		rs.MustDo("REPLICAOF", "127.0.0.1", "1") // a master that never answers
		defer rs.MustDo("REPLICAOF", "NO", "ONE")
		want(t, set(), "READONLY")
	})
	t.Run("a command while a script runs too long is BUSY", func(t *testing.T) {
		rs.Block("EVAL", "while true do end", "0")
		// SCRIPT KILL answers before the script has stopped: the next
		// subtest's first command met BUSY (CI, four packages at once).
		defer func() { _, _ = rs.Do("SCRIPT", "KILL"); rs.WaitAnswering() }()
		time.Sleep(200 * time.Millisecond) // past --busy-reply-threshold: BUSY, not silence
		want(t, set(), "BUSY")
	})
	t.Run("a command while a restarted Redis loads its data is LOADING", func(t *testing.T) {
		// A Redis restarted with a large append-only file answers LOADING
		// for seconds (2.5 s in an operator's kill -9 and restart): a 503,
		// never a 500. DEBUG RELOAD loads the same way, slowed per key.
		rs.MustDo("DEBUG", "POPULATE", "200", "loading:", "1024")
		rs.MustDo("CONFIG", "SET", "loading-process-events-interval-bytes", "1024")
		rs.MustDo("CONFIG", "SET", "key-load-delay", "10000") // 10 ms a key: 2 s
		reloaded := make(chan error, 1)
		go func() { _, err := rs.Do("DEBUG", "RELOAD"); reloaded <- err }()
		defer func() {
			if err := <-reloaded; err != nil {
				t.Error(err)
			}
			rs.MustDo("CONFIG", "SET", "key-load-delay", "0")
			rs.MustDo("FLUSHALL")
		}()
		time.Sleep(300 * time.Millisecond)
		want(t, set(), "LOADING")
	})
	t.Run("a hung Redis has timed out", func(t *testing.T) {
		rs.Pause()
		defer rs.Resume()
		want(t, set(), redisconn.TimedOut)
	})
	t.Run("a stopped Redis refuses connections", func(t *testing.T) {
		rs.Stop()
		defer rs.Start()
		time.Sleep(100 * time.Millisecond)
		err := set()
		if kind, ok := redisconn.Unavailable(err); !ok || kind.MayHaveRun() && kind != redisconn.ConnLost {
			t.Errorf("%v: %q, %v; want unavailable", err, kind, ok)
		}
	})
	t.Run("a password set since is WRONGPASS or NOAUTH", func(t *testing.T) {
		// A new password, and every connection dropped, as a restart with it would.
		if _, err := rs.DoSeq([]string{"CONFIG", "SET", "requirepass", "changed"}, []string{"CLIENT", "KILL", "TYPE", "normal"}); err != nil {
			t.Fatal(err)
		}
		err := set()
		for i := 0; i < 3 && errors.Is(err, io.EOF); i++ {
			err = set() // the connection the kill closed; then a new one
		}
		if kind, ok := redisconn.Unavailable(err); !ok || (kind != "NOAUTH" && kind != "WRONGPASS") {
			t.Errorf("%v: %q, %v; want NOAUTH or WRONGPASS", err, kind, ok)
		}
	})
}

package redisconn_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// On a Sentinel URL the client writes to the master, and through SENTINEL
// FAILOVER it writes only where the write is kept: while the sentinels
// switch masters its commands are refused as unavailable (FailingOver),
// none lands on the old master, and afterwards it writes to the new one
// once that has a replica in sync.
// The sentinels here have a password of their own: the client and its
// watch on their failover events both need it.
func TestClientFollowsSentinelFailover(t *testing.T) {
	topo := redistest.StartTopologyWith(t, redistest.TopologyOptions{SentinelPassword: "sentinel-secret"})
	if _, err := redisconn.Connect(t.Context(), redisconn.Config{URL: topo.URL()}); err == nil {
		t.Fatal("connected to password-protected sentinels without the password")
	}
	rdb, err := redisconn.Connect(t.Context(), redisconn.Config{URL: topo.URL(), SentinelPassword: "sentinel-secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	master := func() string { return slices.Collect(maps.Keys(rdb.Nodes()))[0] }
	if master() != topo.MasterAddr() {
		t.Fatalf("client on %s, the sentinels' master is %s", master(), topo.MasterAddr())
	}

	var acked, refused atomic.Int64
	var bad []error
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !done.Load() {
			err := rdb.Do(context.Background(), rdb.B().Incr().Key("n").Build()).Error()
			if kind, ok := redisconn.Unavailable(err); err == nil {
				acked.Add(1)
			} else if ok {
				refused.Add(1)
				if kind == redisconn.FailingOver && !errors.Is(err, redisconn.ErrFailingOver) {
					bad = append(bad, err)
				}
				time.Sleep(5 * time.Millisecond)
			} else {
				bad = append(bad, err)
			}
		}
	})
	time.Sleep(300 * time.Millisecond)
	from, to := topo.Failover()
	time.Sleep(300 * time.Millisecond)
	done.Store(true)
	wg.Wait()

	if len(bad) > 0 {
		t.Errorf("errors that are not 'unavailable': %v", bad)
	}
	if master() != to {
		t.Errorf("client on %s after the failover, want %s", master(), to)
	}
	n, err := strconv.Atoi(topo.Master().MustDo("GET", "n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d INCRs acknowledged, %d refused during the failover; the new master has %d", acked.Load(), refused.Load(), n)
	// One INCR may have been in flight when the replica was promoted.
	if lost := acked.Load() - int64(n); lost > 1 {
		t.Errorf("%d acknowledged INCRs are not on the new master: the client wrote to the old one", lost)
	}
	if refused.Load() == 0 {
		t.Error("no command was refused during the failover")
	}
	// The new master has no replica until a sentinel turns the old master
	// into one (about ten seconds): writes are refused meanwhile, unsent,
	// since a second failover would promote the old master and lose them.
	// Once the old master replicates, writes go through.
	err = rdb.Do(context.Background(), rdb.B().Incr().Key("n").Build()).Error()
	if kind, _ := redisconn.Unavailable(err); kind != redisconn.NoReplica {
		t.Errorf("INCR on the new master before it has a replica: %v, classified %q; want %q", err, kind, redisconn.NoReplica)
	}
	if got := topo.Master().MustDo("GET", "n"); got != strconv.Itoa(n) {
		t.Errorf("n = %s after a refused INCR, want %d", got, n)
	}
	for _, node := range topo.Nodes {
		if node.Addr() == from {
			topo.WaitReplica(node)
		}
	}
	waitFor(t, "a write once the old master replicates the new one", func() error {
		return rdb.Do(context.Background(), rdb.B().Incr().Key("n").Build()).Error()
	})
}

// waitFor retries ok for up to 3 s (the gate checks the master's
// replicas every half second).
func waitFor(t *testing.T, what string, ok func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = ok(); err == nil {
			return
		}
	}
	t.Errorf("%s: %v", what, err)
}

package redisconn_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// A replica "in sync" (connected, acknowledging within 2 s) need not have
// every write: here its replication stream is held (CLIENT PAUSE WRITE on
// the replica postpones what its master sends, while it still acknowledges
// the offset it has every second, so the master lists it online with lag 0),
// and SENTINEL FAILOVER promotes it as it is. With the group commit no write
// is acknowledged that the promoted replica lacks (the writes meanwhile are
// answered as "may or may not"); without it, the writes acknowledged during
// the stall are gone, both the rueidis client's and the session pool's.
func TestGroupCommitKeepsAcknowledgedWritesThroughFailover(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run("group commit "+map[bool]string{true: "on", false: "off"}[on], func(t *testing.T) {
			topo := redistest.StartTopology(t)
			cfg := redisconn.Config{URL: topo.URL()}
			rdb, err := redisconn.Connect(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(rdb.Close)
			redisconn.SetGroupCommit(rdb, on)
			pool, err := redisconn.NewPool(cfg, rdb)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pool.Close() })
			store := redisconn.NewSessionStore(pool, "sess:")
			incr := func() error {
				return rdb.Do(context.Background(), rdb.B().Incr().Key("n").Build()).Error()
			}
			// Writes go through while the replica keeps up.
			waitFor(t, "a write acknowledged once the master has a replica in sync", incr)
			acked := 1
			if err := store.CommitCtx(context.Background(), "before", []byte("kept"), time.Now().Add(time.Hour)); err != nil {
				t.Fatalf("session commit while the replica keeps up: %v", err)
			}

			replica := topo.Nodes[0]
			if replica.Addr() == topo.MasterAddr() {
				replica = topo.Nodes[1]
			}
			// The pause would also hold the sentinels' PUBLISH hellos, and the
			// failover's SLAVEOF NO ONE behind them: refused by ACL instead
			// (checked before the pause), they cannot block the sentinels'
			// link. The master's stream is not subject to ACLs.
			replica.MustDo("ACL", "SETUSER", "default", "-publish")
			replica.MustDo("CLIENT", "PAUSE", "120000", "WRITE")
			t.Cleanup(func() { _, _ = replica.Do("CLIENT", "UNPAUSE") })
			t.Cleanup(func() {
				if t.Failed() {
					for _, s := range topo.Sentinels {
						t.Log(s.Log())
					}
					for _, n := range topo.Nodes {
						r, _ := n.Do("INFO", "replication")
						t.Log(n.Addr(), r)
					}
				}
			})

			const stalled = 3
			for range stalled {
				err := incr()
				if err == nil {
					acked++
					continue
				}
				if kind, ok := redisconn.Unavailable(err); !ok || !kind.MayHaveRun() {
					t.Errorf("INCR while the replica lags: %v, classified %q; want a kind that may have run", err, kind)
				}
			}
			sessionAcked := false
			switch err := store.CommitCtx(context.Background(), "stalled", []byte("v"), time.Now().Add(time.Hour)); {
			case err == nil:
				sessionAcked = true
			default:
				if kind, ok := redisconn.Unavailable(err); !ok || !kind.MayHaveRun() {
					t.Errorf("session commit while the replica lags: %v, classified %q; want a kind that may have run", err, kind)
				}
			}

			// Once the replica is a master (its stalled stream discarded with
			// its link to the old one), it serves as before.
			promoted := make(chan struct{})
			go func() {
				defer close(promoted)
				for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if role, _ := replica.Do("ROLE"); strings.HasPrefix(role, "master") {
						_, _ = replica.Do("CLIENT", "UNPAUSE")
						_, _ = replica.Do("ACL", "SETUSER", "default", "+publish")
						return
					}
				}
			}()
			from, to := topo.Failover()
			<-promoted
			if to != replica.Addr() {
				t.Fatalf("the sentinels promoted %s, not the lagging replica %s", to, replica.Addr())
			}
			n, err := strconv.Atoi(replica.MustDo("GET", "n"))
			if err != nil {
				t.Fatal(err)
			}
			sessionKept := replica.MustDo("EXISTS", "sess:stalled") == "1"
			t.Logf("master %s -> %s: %d INCRs acknowledged, %d while the replica lagged; the promoted replica has %d; the session written meanwhile acknowledged %v, kept %v",
				from, to, acked, acked-1, n, sessionAcked, sessionKept)
			if replica.MustDo("EXISTS", "sess:before") != "1" {
				t.Error("the session committed before the stall is not on the new master")
			}
			lost := acked - n
			if sessionAcked && !sessionKept {
				lost++
			}
			switch {
			case on && lost > 0:
				t.Errorf("%d acknowledged writes are not on the promoted replica", lost)
			case !on && lost != stalled+1:
				// What the group commit prevents must happen without it, or
				// this test shows nothing.
				t.Errorf("without the group commit, %d acknowledged writes lost; want the %d written while the replica lagged", lost, stalled+1)
			}
		})
	}
}

// A write the master applied is "may or may not" however its wait for a
// replica ends: the request's time running out, or the client closing (a
// shutdown), never "nothing was changed".
func TestAWriteCutOffWaitingForAReplicaMayHaveRun(t *testing.T) {
	topo := redistest.StartTopology(t)
	rdb, err := redisconn.Connect(t.Context(), redisconn.Config{URL: topo.URL()})
	if err != nil {
		t.Fatal(err)
	}
	incr := func(ctx context.Context) error { return rdb.Do(ctx, rdb.B().Incr().Key("n").Build()).Error() }
	waitFor(t, "a write acknowledged once the master has a replica in sync", func() error { return incr(context.Background()) })
	replica := topo.Nodes[0]
	if replica.Addr() == topo.MasterAddr() {
		replica = topo.Nodes[1]
	}
	replica.MustDo("CLIENT", "PAUSE", "60000", "WRITE")
	t.Cleanup(func() { _, _ = replica.Do("CLIENT", "UNPAUSE") })

	mayHaveRun := func(what string, err error) {
		t.Helper()
		kind, ok := redisconn.Unavailable(err)
		if !ok || kind != redisconn.NotReplicated {
			t.Errorf("%s: %v, classified %q; want %q", what, err, kind, redisconn.NotReplicated)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	mayHaveRun("INCR whose request ran out of time waiting", incr(ctx))

	done := make(chan error, 1)
	go func() { done <- incr(context.Background()) }()
	time.Sleep(200 * time.Millisecond) // applied, and waiting for a round
	rdb.Close()
	select {
	case err := <-done:
		mayHaveRun("INCR waiting when the client closed", err)
	case <-time.After(10 * time.Second):
		t.Fatal("a write waiting for a replica was not answered when the client closed")
	}
	if got := topo.Master().MustDo("GET", "n"); got != "3" {
		t.Errorf("n = %s on the master, want 3: both cut-off writes were applied", got)
	}
}

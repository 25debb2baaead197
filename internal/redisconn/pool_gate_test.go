package redisconn

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// The session pool does not send through the rueidis client, yet the
// failover gate holds it too: while the gate is closed for the master,
// session calls fail at once as failing over and write nothing. And like
// the client's writes, a session write on a Sentinel deployment is
// acknowledged only once a replica confirms it (WAIT 1).
func TestFailoverGateHoldsTheSessionPool(t *testing.T) {
	rs := redistest.Start(t)
	g := &failoverGate{Client: rs.Client(t), masterSet: "mymaster"}
	gates.Store(g, struct{}{})
	t.Cleanup(func() { gates.Delete(g) })
	pool, err := NewPool(Config{URL: "redis://" + rs.Addr() + "/0?master_set=mymaster"}, g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	store := NewSessionStore(pool, "sess:", func(k string) string { return k })
	ctx := context.Background()
	commit := func(v string) error { return store.CommitCtx(ctx, "tok", []byte(v), time.Now().Add(time.Hour)) }
	// On a Sentinel deployment a session write is acknowledged only once a
	// replica has it: this master has none yet.
	err = commit("alone")
	if kind, _ := Unavailable(err); kind != NotReplicated || !kind.MayHaveRun() {
		t.Errorf("commit on a master without a replica: %v, classified %q; want %q", err, kind, NotReplicated)
	}
	rs.MustDo("CONFIG", "SET", "repl-diskless-sync-delay", "0") // sync the replica now, not in 5 s
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", rs.Addr()[len("127.0.0.1:"):])
	waitInSync(t, replica)
	if err := commit("before"); err != nil {
		t.Fatal(err)
	}
	host, port := "127.0.0.1", rs.Addr()[len("127.0.0.1:"):]

	g.event(rueidis.PubSubMessage{Channel: "+failover-state-select-slave", Message: "master mymaster " + host + " " + port})
	err = commit("during")
	if kind, _ := Unavailable(err); kind != FailingOver || !errors.Is(err, ErrFailingOver) {
		t.Errorf("commit during a failover: %v, classified %q; want %q", err, kind, FailingOver)
	}
	if _, _, err := store.FindCtx(ctx, "tok"); !errors.Is(err, ErrFailingOver) {
		t.Errorf("find during a failover: %v", err)
	}
	if got := rs.MustDo("GET", "sess:tok"); got != "before" {
		t.Errorf("sess:tok = %q: a write reached the master being replaced", got)
	}

	g.event(rueidis.PubSubMessage{Channel: "-failover-abort-no-good-slave", Message: "master mymaster " + host + " " + port})
	if err := commit("after"); err != nil {
		t.Errorf("commit after the failover aborted: %v", err)
	}
}

// waitInSync waits until replica has loaded its master's data.
func waitInSync(t *testing.T, replica *redistest.Server) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		info, _ := replica.Do("INFO", "replication")
		if strings.Contains(info, "master_link_status:up") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica not in sync after 10 s: %s", info)
		}
	}
}

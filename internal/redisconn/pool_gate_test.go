package redisconn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// The session pool does not send through the rueidis client, yet the
// failover gate holds it too: while the gate is closed for the master,
// session calls fail at once as failing over and write nothing.
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

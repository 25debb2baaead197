package redisconn

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// The session pool does not send through the rueidis client, yet the
// failover gate holds it too: while the gate is closed for the master,
// session calls fail at once as failing over and write nothing. And like
// the client's writes, session writes are refused, unsent, while the
// master has no replica in sync; reads go on.
func TestFailoverGateHoldsTheSessionPool(t *testing.T) {
	rs := redistest.Start(t)
	g := &failoverGate{Client: rs.Client(t), masterSet: "mymaster", log: slog.New(slog.DiscardHandler)}
	gates.Store(g, struct{}{})
	t.Cleanup(func() { gates.Delete(g) })
	pool, err := NewPool(Config{URL: "redis://" + rs.Addr() + "/0?master_set=mymaster"}, g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	store := NewSessionStore(pool, "sess:")
	ctx := context.Background()
	commit := func(v string) error { return store.CommitCtx(ctx, "tok", []byte(v), time.Now().Add(time.Hour)) }

	g.checkReplicas(ctx)
	for name, err := range map[string]error{
		"session commit":               commit("alone"),
		"session delete":               store.DeleteCtx(ctx, "tok"),
		"client write":                 g.Do(ctx, g.B().Set().Key("k").Value("v").Build()).Error(),
		"client pipeline with a write": g.DoMulti(ctx, g.B().Get().Key("k").Build(), g.B().Set().Key("k").Value("v").Build())[0].Error(),
	} {
		if kind, _ := Unavailable(err); kind != NoReplica || kind.MayHaveRun() {
			t.Errorf("%s on a master without a replica: %v, classified %q; want %q", name, err, kind, NoReplica)
		}
	}
	if got := rs.MustDo("EXISTS", "sess:tok", "k"); got != "0" {
		t.Errorf("%s keys written on a master without a replica", got)
	}
	if _, _, err := store.FindCtx(ctx, "tok"); err != nil {
		t.Errorf("session read on a master without a replica: %v", err)
	}
	if err := g.Do(ctx, g.B().Get().Key("k").Build()).Error(); !rueidis.IsRedisNil(err) {
		t.Errorf("client read on a master without a replica: %v", err)
	}
	rs.MustDo("CONFIG", "SET", "repl-diskless-sync-delay", "0") // sync the replica now, not in 5 s
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", rs.Addr()[len("127.0.0.1:"):])
	waitInSync(t, replica)
	// The master lists the replica online once it has acknowledged the sync.
	for deadline := time.Now().Add(5 * time.Second); g.noReplica() != nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		g.checkReplicas(ctx)
	}
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

// A replica counts as in sync when INFO replication lists it online and
// it acknowledged within the last couple of seconds.
func TestInSyncReplicas(t *testing.T) {
	for _, tc := range []struct {
		name, info string
		want       int
	}{
		{"none", "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n", 0},
		{"one online", "role:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=0\r\nmaster_failover_state:no-failover\r\n", 1},
		{"one still syncing", "connected_slaves:1\r\nslave0:ip=127.0.0.1,port=6380,state=wait_bgsave,offset=0,lag=0\r\n", 0},
		{"one silent for 5 s", "connected_slaves:1\r\nslave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=5\r\n", 0},
		{"two, one online", "slave0:ip=a,port=1,state=online,offset=1,lag=1\r\nslave1:ip=b,port=2,state=send_bulk,offset=0,lag=0\r\n", 1},
	} {
		if got := inSyncReplicas(tc.info); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// A Sentinel deployment whose ACL user may not send INFO cannot tell
// whether the master has a replica: writes are refused (and the warning
// names the NOPERM), never let through unchecked.
func TestReplicaCheckWithoutInfoRefusesWrites(t *testing.T) {
	rs := redistest.Start(t)
	rs.MustDo("ACL", "SETUSER", "noinfo", "on", ">pw", "~*", "&*", "+@all", "-info")
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, Username: "noinfo", Password: "pw",
		ForceSingleClient: true, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var log strings.Builder
	g := &failoverGate{Client: c, masterSet: "mymaster", log: slog.New(slog.NewTextHandler(&log, nil))}
	g.checkReplicas(context.Background())
	if err := g.Do(context.Background(), g.B().Set().Key("k").Value("v").Build()).Error(); !errors.Is(err, ErrNoReplica) {
		t.Errorf("write without INFO: %v, want %v", err, ErrNoReplica)
	}
	if !strings.Contains(log.String(), "NOPERM") {
		t.Errorf("the warning does not name the NOPERM: %s", log.String())
	}
}

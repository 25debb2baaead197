package redisconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// The session pool does not send through the rueidis client, yet the
// failover gate holds it too: while the gate is closed for the master,
// session calls fail at once as failing over and write nothing. And like
// the client's writes, session writes are refused, unsent, while the
// master has no replica in sync; reads go on.
func TestFailoverGateHoldsTheSessionPool(t *testing.T) {
	rs, g, store := gatedSessionStore(t)
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
	if err := g.Do(ctx, g.B().ConfigGet().Parameter("maxmemory-policy").Build()).Error(); err != nil {
		t.Errorf("CONFIG GET (the startup check of maxmemory-policy) on a master without a replica: %v", err)
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
	err := commit("during")
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
// it acknowledged within the last couple of seconds. When none is, the
// warning quotes what the master said of each (replicaLines).
func TestInSyncReplicas(t *testing.T) {
	for _, tc := range []struct {
		name, info string
		want       int
		lines      string
	}{
		{"none", "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n", 0, "none"},
		{"one online", "role:master\r\nconnected_slaves:1\r\nslave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=0\r\nmaster_failover_state:no-failover\r\n", 1,
			"slave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=0"},
		{"one still syncing", "connected_slaves:1\r\nslave0:ip=127.0.0.1,port=6380,state=wait_bgsave,offset=0,lag=0\r\n", 0,
			"slave0:ip=127.0.0.1,port=6380,state=wait_bgsave,offset=0,lag=0"},
		{"one silent for 5 s", "connected_slaves:1\r\nslave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=5\r\n", 0,
			"slave0:ip=127.0.0.1,port=6380,state=online,offset=42,lag=5"},
		{"two, one online", "slave0:ip=a,port=1,state=online,offset=1,lag=1\r\nslave1:ip=b,port=2,state=send_bulk,offset=0,lag=0\r\n", 1,
			"slave0:ip=a,port=1,state=online,offset=1,lag=1 slave1:ip=b,port=2,state=send_bulk,offset=0,lag=0"},
	} {
		if got := inSyncReplicas(tc.info); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
		if got := replicaLines(tc.info); got != tc.lines {
			t.Errorf("%s: the warning would say replicas=%q, want %q", tc.name, got, tc.lines)
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

// gatedSessionStore is a Redis with no replica, a failover gate on it named
// mymaster, and a session store whose pool the gate holds.
func gatedSessionStore(t *testing.T) (*redistest.Server, *failoverGate, SessionStore) {
	rs := redistest.Start(t)
	g := &failoverGate{Client: rs.Client(t), masterSet: "mymaster", log: slog.New(slog.DiscardHandler)}
	gates.Store(g, struct{}{})
	t.Cleanup(func() { gates.Delete(g) })
	pool, err := NewPool(Config{URL: "redis://" + rs.Addr() + "/0?master_set=mymaster"}, g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return rs, g, NewSessionStore(pool, "sess:")
}

// A command the gate refuses never reaches Redis, so a request's trace lists
// it as not sent, with why, never as sent and failed: the trace is what
// redis-cli MONITOR printed for the request, and MONITOR printed nothing.
func TestARefusedCommandIsTracedAsNotSent(t *testing.T) {
	rs, g, store := gatedSessionStore(t)
	c := redistrace.Client(g, false)
	ctx, tr := redistrace.Start(context.Background())
	g.checkReplicas(context.Background()) // no replica: writes are refused
	mon := rs.StartMonitor(t)

	seen := mon.Around(t, func() {
		c.Do(ctx, c.B().Set().Key("k").Value("v").Build())
		c.DoMulti(ctx, c.B().Get().Key("k").Build(), c.B().Incr().Key("n").Build())
		_ = store.CommitCtx(ctx, "tok", []byte("v"), time.Now().Add(time.Hour))
		host, port := "127.0.0.1", rs.Addr()[len("127.0.0.1:"):]
		g.event(rueidis.PubSubMessage{Channel: "+failover-state-select-slave", Message: "master mymaster " + host + " " + port})
		c.DoCache(ctx, c.B().Get().Key("k").Cache(), time.Minute)
	})

	var got, sent []string
	tr.Each(func(cmd redistrace.Command) {
		if cmd.Handshake { // the pool's new connection; not what this test is about
			return
		}
		args := strings.Join(cmd.Args, " ")
		got = append(got, fmt.Sprintf("%s unsent=%t queued=%t: %s", args, cmd.Unsent, cmd.Queued, cmd.Reply))
		if !cmd.Unsent {
			sent = append(sent, args)
		}
	})
	noReplica, failingOver := "unsent=true queued=false: not sent: the master has no replica in sync",
		"unsent=true queued=false: not sent: Sentinel is failing the master over"
	want := []string{
		"SET k v " + noReplica,
		"GET k " + noReplica, // refused with the pipeline's write: none of it was sent
		"INCR n " + noReplica,
		"ROLE unsent=false queued=false: [master, 0, 0 items]", // the pool checks a new connection
		"MULTI " + noReplica,
		// redigo returns a connection whose MULTI it took as sent with a
		// DISCARD, which Redis refuses: it is sent, so it is listed.
		"DISCARD unsent=false queued=false: error ERR",
		"GET k " + failingOver,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("trace:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var printed []string
	for _, l := range seen {
		if l.Args[0] != "HELLO" && l.Args[0] != "CLIENT" && l.Args[0] != "SELECT" && l.Args[0] != "AUTH" {
			printed = append(printed, strings.Join(l.Args, " "))
		}
	}
	if strings.Join(printed, "\n") != strings.Join(sent, "\n") {
		t.Errorf("MONITOR printed:\n%s\nthe trace lists as sent:\n%s", strings.Join(printed, "\n"), strings.Join(sent, "\n"))
	}
	if n := rs.MustDo("EXISTS", "k", "n", "sess:tok"); n != "0" {
		t.Errorf("%s keys written by refused commands", n)
	}
}

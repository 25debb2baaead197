package redisconn

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// A write acknowledged by a master with no replica in sync is lost by a
// second failover (TestNemesis lost 12,380 counts in 60 s that way), so the
// gate refuses writes then; one INFO per replicaCheckEvery checks it, nothing
// per write. The asynchronous window remains (docs/reliability.md).

// ErrNoReplica is the error of a write refused because the master has no
// replica in sync: a failover now could lose it. Nothing was sent.
var ErrNoReplica error = &redistrace.Refusal{Why: "the master has no replica in sync",
	Msg: "the Redis master has no replica in sync, so a failover could lose a write: writes are refused until it has one"}

// replicaCheckEvery is how often the gate asks the master about its
// replicas. A replica that drops out is noticed within this long.
const replicaCheckEvery = 500 * time.Millisecond

// maxReplicaLag is the largest INFO "lag" (seconds since the replica last
// acknowledged; replicas acknowledge every second) of a replica in sync.
const maxReplicaLag = 2

// replicaState is what the last check found: the master it asked, and
// whether that master had a replica in sync.
type replicaState struct {
	mu       sync.Mutex
	master   string
	replicas bool
	recheck  chan struct{} // a new master: check now
}

// noReplica is ErrNoReplica unless the last check found a replica in sync
// on the master the client now sends to.
func (g *failoverGate) noReplica() error {
	g.rs.mu.Lock()
	master, ok := g.rs.master, g.rs.replicas
	g.rs.mu.Unlock()
	if ok && master == g.masterAddr() {
		return nil
	}
	return ErrNoReplica
}

// watchReplicas checks the master's replicas every replicaCheckEvery, and
// at once when the client moves to another master, until ctx ends.
func (g *failoverGate) watchReplicas(ctx context.Context) {
	tick := time.NewTicker(replicaCheckEvery)
	defer tick.Stop()
	for {
		g.checkReplicas(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-g.rs.recheck:
		}
	}
}

// checkReplicas records whether the master has a replica in sync.
func (g *failoverGate) checkReplicas(ctx context.Context) {
	master := g.masterAddr()
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	info, err := g.Client.Do(ctx, g.Client.B().Info().Section("replication").Build()).ToString()
	cancel()
	ok := err == nil && inSyncReplicas(info) > 0
	if g.masterAddr() != master {
		return // the client moved meanwhile: the answer is about the old one
	}
	g.rs.mu.Lock()
	if err != nil && master == g.rs.master && g.rs.replicas {
		// No answer is no news: a slow master keeps its last state; one
		// that cannot answer fails the writes themselves.
		g.rs.mu.Unlock()
		return
	}
	changed := ok != g.rs.replicas || master != g.rs.master
	g.rs.master, g.rs.replicas = master, ok
	g.rs.mu.Unlock()
	switch {
	case !changed:
	case ok:
		g.log.Info("Redis Sentinel: the master has a replica in sync; writes are accepted", "master", master)
	case err != nil:
		g.log.Warn("Redis Sentinel: the master has no replica in sync; writes are refused until it has one", "master", master, "err", err)
	default: // what the master said of its replicas: which one, its state, its lag
		g.log.Warn("Redis Sentinel: the master has no replica in sync; writes are refused until it has one", "master", master, "replicas", replicaLines(info))
	}
}

// newMaster makes the gate refuse writes until the new master is checked.
func (g *failoverGate) newMaster() {
	g.rs.mu.Lock()
	g.rs.replicas = false
	g.rs.mu.Unlock()
	select {
	case g.rs.recheck <- struct{}{}:
	default:
	}
}

// replicaLines are the replicas an INFO replication reply lists, as it
// lists them ("slave0:ip=…,state=online,offset=…,lag=3"), or "none".
func replicaLines(info string) string {
	var lines []string
	for line := range strings.Lines(info) {
		if strings.HasPrefix(line, "slave") && strings.Contains(line, "state=") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	if lines == nil {
		return "none"
	}
	return strings.Join(lines, " ")
}

// inSyncReplicas counts the replicas an INFO replication reply lists as
// online with a lag of at most maxReplicaLag seconds.
func inSyncReplicas(info string) int {
	n := 0
	for line := range strings.Lines(info) {
		name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "slave") || !strings.Contains(fields, "state=") {
			continue
		}
		online, lag := false, -1
		for f := range strings.SplitSeq(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "state":
				online = v == "online"
			case "lag":
				lag, _ = strconv.Atoi(v)
			}
		}
		if online && lag >= 0 && lag <= maxReplicaLag {
			n++
		}
	}
	return n
}

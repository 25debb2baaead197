package redisconn

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A write acknowledged by a master with no replica in sync exists on one
// server: a second failover in the ten seconds before the old master is
// reconfigured as a replica loses it (TestNemesis lost 12,380 acknowledged
// counts in 60 s that way). So on Sentinel the gate also refuses writes,
// before sending them, while the master has no replica in sync; reads go
// on. One INFO replication every replicaCheckEvery per process checks it,
// so a healthy deployment pays nothing per write. The asynchronous window
// remains (docs/reliability.md).

// ErrNoReplica is the error of a write refused because the master has no
// replica in sync: a failover now could lose it. Nothing was sent.
var ErrNoReplica = errors.New("the Redis master has no replica in sync, so a failover could lose a write: writes are refused until it has one")

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

// checkReplicas asks the master the client uses whether it has a replica
// in sync, and records the answer. A failed check counts as none, unless
// the same master said it had one last time.
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
		// No answer is no news: a master too slow to answer INFO in time
		// (a loaded machine) keeps the state of its last answer; one that
		// cannot answer fails the writes themselves.
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
	default:
		g.log.Warn("Redis Sentinel: the master has no replica in sync; writes are refused until it has one", "master", master, "err", err)
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

// inSyncReplicas counts the replicas an INFO replication reply lists as
// online with a lag of at most maxReplicaLag seconds. A replica's line
// reads "slave0:ip=127.0.0.1,port=6380,state=online,offset=123,lag=0".
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

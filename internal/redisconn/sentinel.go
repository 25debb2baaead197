package redisconn

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// Sentinel: rueidis alone writes to the old master until +switch-master
// arrives, and those writes are lost when it resyncs as a replica. So a gate
// refuses every command (ErrFailingOver) from the first failover event any
// sentinel publishes until rueidis talks to another master.

// ErrFailingOver is the error of a command refused because the sentinels
// are failing the master over (see Unavailable: kind FailingOver).
var ErrFailingOver error = &redistrace.Refusal{Why: "Sentinel is failing the master over", Msg: "Redis Sentinel is failing the master over"}

// maxFailoverPause bounds how long the gate stays closed if the new master is
// never announced (a failover that aborts silently).
const maxFailoverPause = 10 * time.Second

// gateFailovers returns c wrapped so that its commands fail with
// ErrFailingOver while any sentinel in opt reports a failover.
func gateFailovers(c rueidis.Client, opt rueidis.ClientOption, log *slog.Logger) rueidis.Client {
	g := &failoverGate{Client: c, masterSet: opt.Sentinel.MasterSet, log: log, dedicated: map[rueidis.DedicatedClient]struct{}{},
		rs: replicaState{recheck: make(chan struct{}, 1)}, acks: newAckTracker(c)}
	ctx, cancel := context.WithCancel(context.Background())
	g.checkReplicas(ctx) // writes wait for the first answer
	var wg sync.WaitGroup
	for _, addr := range opt.InitAddress {
		wg.Go(func() { g.watch(ctx, addr, opt.Sentinel) })
	}
	wg.Go(func() { g.follow(ctx) })
	wg.Go(func() { g.watchReplicas(ctx) })
	g.stop = func() { cancel(); wg.Wait() }
	gates.Store(g, struct{}{})
	return g
}

// gates are the open clients' gates, for the session pool, which does not
// send through the rueidis client.
var gates sync.Map // *failoverGate -> struct{}

// failingOver is ErrFailingOver while a gate is closed for the master at
// addr, else nil.
func failingOver(addr string) (err error) {
	gates.Range(func(k, _ any) bool {
		g := k.(*failoverGate)
		if g.refuse() == nil {
			return true
		}
		g.mu.Lock()
		from := g.from
		g.mu.Unlock()
		if from == addr {
			err = ErrFailingOver
			return false
		}
		return true
	})
	return err
}

// noReplicaAt is ErrNoReplica when a gate that sends to the master at addr
// refuses writes for want of a replica in sync (see noReplica), else nil.
func noReplicaAt(addr string) (err error) {
	gates.Range(func(k, _ any) bool {
		g := k.(*failoverGate)
		if g.masterAddr() != addr {
			return true
		}
		err = g.noReplica()
		return false
	})
	return err
}

// failoverGate refuses commands during a failover, and writes while the
// master has no replica in sync.
type failoverGate struct {
	rueidis.Client
	masterSet string
	log       *slog.Logger
	stop      func()

	closed atomic.Bool
	mu     sync.Mutex
	from   string    // the master being failed over
	until  time.Time // open again by then in any case

	dmu       sync.Mutex
	dedicated map[rueidis.DedicatedClient]struct{} // lent out by Dedicate

	rs   replicaState // does the master have a replica in sync (see noReplica)
	acks *ackTracker  // writes are answered once a replica has them
}

// Dedicate lends a dedicated connection and closes it when the master
// changes: rueidis leaves it where it was, and a subscription on the old
// master would hear nothing for the ten seconds until it is demoted.
func (g *failoverGate) Dedicate() (rueidis.DedicatedClient, func()) {
	d, release := g.Client.Dedicate()
	g.dmu.Lock()
	g.dedicated[d] = struct{}{}
	g.dmu.Unlock()
	return d, func() {
		g.dmu.Lock()
		delete(g.dedicated, d)
		g.dmu.Unlock()
		release()
	}
}

// follow notices when rueidis moves to another master: it opens the gate
// and closes the dedicated connections to the old one.
func (g *failoverGate) follow(ctx context.Context) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := g.masterAddr()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := g.masterAddr()
		if now == last {
			continue
		}
		g.log.Info("Redis Sentinel: new master", "from", last, "to", now)
		last = now
		g.newMaster()  // no write until it has a replica in sync
		_ = g.refuse() // opens the gate
		g.dmu.Lock()
		for d := range g.dedicated {
			d.Close()
		}
		g.dmu.Unlock()
	}
}

// masterAddr is the address of the master rueidis sends commands to.
func (g *failoverGate) masterAddr() string {
	for addr := range g.Client.Nodes() {
		return addr
	}
	return ""
}

// shut closes the gate while the client's master is from.
func (g *failoverGate) shut(from string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.masterAddr() != from {
		return // a late event about a master the client has left already
	}
	g.from, g.until = from, time.Now().Add(maxFailoverPause)
	if !g.closed.Swap(true) {
		g.log.Warn("Redis Sentinel: a failover of the master started; commands are refused until the app follows the new master", "master", from)
	}
}

// refuse is ErrFailingOver while the gate is closed, else nil. It costs an
// atomic load when no failover is under way.
func (g *failoverGate) refuse() error {
	if !g.closed.Load() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Now().After(g.until) || g.masterAddr() != g.from {
		g.closed.Store(false)
		return nil
	}
	return ErrFailingOver
}

// open opens the gate when the failover aborted.
func (g *failoverGate) open(why string) {
	if g.closed.Swap(false) {
		g.log.Info("Redis Sentinel: the failover aborted; commands are accepted again", "why", why)
	}
}

// failoverEvents announce a failover's steps; only the leading sentinel
// publishes them, so the gate listens to all.
var failoverEvents = []string{"+failover-state-select-slave", "+selected-slave",
	"+failover-state-send-slaveof-noone", "+promoted-slave", "-failover-abort-*"}

// watch listens to one sentinel's failover events until ctx ends,
// reconnecting while the sentinel is away.
func (g *failoverGate) watch(ctx context.Context, addr string, so rueidis.SentinelOption) {
	for ctx.Err() == nil {
		c, err := rueidis.NewClient(rueidis.ClientOption{
			InitAddress:  []string{addr},
			Username:     so.Username,
			Password:     so.Password,
			TLSConfig:    so.TLSConfig,
			Dialer:       so.Dialer,
			DisableCache: true, // a sentinel has no client tracking
		})
		if err == nil {
			err = c.Receive(ctx, c.B().Psubscribe().Pattern(failoverEvents...).Build(), g.event)
			c.Close()
		}
		if ctx.Err() == nil {
			g.log.Debug("Redis Sentinel: failover events lost; reconnecting", "sentinel", addr, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// event reads a sentinel event ("<type> <name> <ip> <port> [@ <master-set>
// <master-ip> <master-port>]").
func (g *failoverGate) event(m rueidis.PubSubMessage) {
	f := strings.Fields(m.Message)
	var set, ip, port string
	switch {
	case len(f) >= 8 && f[4] == "@":
		set, ip, port = f[5], f[6], f[7]
	case len(f) >= 4 && f[0] == "master":
		set, ip, port = f[1], f[2], f[3]
	default:
		return
	}
	if set != g.masterSet {
		return
	}
	if strings.HasPrefix(m.Channel, "-failover-abort") {
		g.open(m.Channel)
		return
	}
	g.shut(net.JoinHostPort(ip, port))
}

// Close stops watching the sentinels and closes the client.
func (g *failoverGate) Close() {
	gates.Delete(g)
	g.stop()
	g.Client.Close()
}

func (g *failoverGate) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	if err := g.refuse(); err != nil {
		return rueidis.NewErrorResult(err)
	}
	if !writes(cmd) {
		return g.Client.Do(ctx, cmd)
	}
	if err := g.noReplica(); err != nil {
		return rueidis.NewErrorResult(err)
	}
	res := g.Client.Do(ctx, cmd)
	if mayHaveWritten(res) {
		if err := g.acks.replicated(ctx); err != nil {
			return rueidis.NewErrorResult(err)
		}
	}
	return res
}

func (g *failoverGate) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	if err := g.refuse(); err != nil {
		return refused(len(multi), err)
	}
	if !slices.ContainsFunc(multi, writes) {
		return g.Client.DoMulti(ctx, multi...)
	}
	if err := g.noReplica(); err != nil {
		return refused(len(multi), err)
	}
	res := g.Client.DoMulti(ctx, multi...)
	if slices.ContainsFunc(res, mayHaveWritten) {
		if err := g.acks.replicated(ctx); err != nil {
			return refused(len(multi), err)
		}
	}
	return res
}

// writes says whether cmd may write (see noReplica). Blocking commands
// and pub/sub are left alone, and so is CONFIG GET, which rueidis does not
// mark read-only: refused, the startup check of maxmemory-policy warned it
// could not read it "for want of a replica".
func writes(cmd rueidis.Completed) bool {
	if cmd.IsReadOnly() || cmd.IsBlock() || cmd.NoReply() {
		return false
	}
	c := cmd.Commands()
	return len(c) < 2 || c[0] != "CONFIG" || c[1] != "GET"
}

func (g *failoverGate) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	if err := g.refuse(); err != nil {
		return rueidis.NewErrorResult(err)
	}
	return g.Client.DoCache(ctx, cmd, ttl)
}

func (g *failoverGate) DoMultiCache(ctx context.Context, multi ...rueidis.CacheableTTL) []rueidis.RedisResult {
	if err := g.refuse(); err != nil {
		return refused(len(multi), err)
	}
	return g.Client.DoMultiCache(ctx, multi...)
}

func refused(n int, err error) []rueidis.RedisResult {
	res := make([]rueidis.RedisResult, n)
	for i := range res {
		res[i] = rueidis.NewErrorResult(err)
	}
	return res
}

package redisconn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// A replica "in sync" (replicas.go) is connected and acknowledging, not
// holding every write: SENTINEL FAILOVER promotes it without waiting for it
// to catch up, and what the old master acknowledged meanwhile is discarded
// when it resyncs (TestCountsSurviveSentinelFailover lost 27 counts so). So
// on Sentinel a write is answered only once a replica has acknowledged an
// offset past it: a group commit, one WAIT for every write waiting at once,
// instead of a WAIT per write on a connection of its own each.

// ErrNotReplicated is the error of a write the master applied and no replica
// acknowledged in time: a failover now may discard it, or not.
var ErrNotReplicated = errors.New("no Redis replica acknowledged the write in time, so a failover could lose it")

// ackKey is the key each round writes, so its WAIT covers every write the
// master applied before it (WAIT waits for the offset of its connection's
// last write). It is under ready:, which the documented ACL user may write.
const ackKey = "ready:replicated"

// ackWait is how long one round's WAIT waits for a replica; a write gives up
// sooner when its request's time runs out.
const ackWait = DefaultTimeout

// ackTracker releases writes once a replica has them, in rounds that run back
// to back only while a write waits: an idle client sends nothing.
type ackTracker struct {
	c       rueidis.Client // the gate's, unwrapped: the round's SET must not wait for itself
	off     atomic.Bool    // SetGroupCommit(false): writes are answered at once (tests)
	mu      sync.Mutex
	next    *ackRound // the round that covers writes that complete now
	running bool
}

// ackRound is one SET and WAIT; done is closed with err set.
type ackRound struct {
	done    chan struct{}
	err     error
	waiters int
}

func newAckTracker(c rueidis.Client) *ackTracker {
	return &ackTracker{c: c, next: &ackRound{done: make(chan struct{})}}
}

// replicated waits until a replica has every write the master applied
// before it was called: nil, or an error of a kind that may have run
// (ErrNotReplicated, a timeout, a lost connection).
func (t *ackTracker) replicated(ctx context.Context) error {
	if t.off.Load() {
		return nil
	}
	t.mu.Lock()
	r := t.next
	r.waiters++
	if !t.running {
		t.running = true
		go t.run()
	}
	t.mu.Unlock()
	// The master has applied the write whatever happens now: any end of the
	// wait (a round's error, the client closing at shutdown, the request's
	// time running out) leaves it maybe kept, maybe lost by a failover.
	select {
	case <-r.done:
		if r.err != nil && !errors.Is(r.err, ErrNotReplicated) {
			return fmt.Errorf("%w: %w", ErrNotReplicated, r.err)
		}
		return r.err
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for a replica: %w", ErrNotReplicated, ctx.Err())
	}
}

// run runs rounds while writes wait for one.
func (t *ackTracker) run() {
	for {
		t.mu.Lock()
		r := t.next
		if r.waiters == 0 {
			t.running = false
			t.mu.Unlock()
			return
		}
		// Writes that complete from now on wait for the next round: this
		// one's SET may be sent before they were applied.
		t.next = &ackRound{done: make(chan struct{})}
		t.mu.Unlock()
		r.err = t.round()
		close(r.done)
	}
}

// round writes ackKey and waits for a replica to acknowledge it, on one
// connection: WAIT is a blocking command, so rueidis sends both on a
// connection of its blocking pool, the same one round after round.
func (t *ackTracker) round() error {
	ctx, cancel := context.WithTimeout(context.Background(), ackWait+DefaultTimeout)
	defer cancel()
	res := t.c.DoMulti(ctx,
		t.c.B().Set().Key(ackKey).Value(strconv.FormatInt(time.Now().UnixMilli(), 10)).Build(),
		t.c.B().Wait().Numreplicas(1).Timeout(ackWait.Milliseconds()).Build())
	if err := res[0].Error(); err != nil {
		return err
	}
	n, err := res[1].AsInt64()
	if err != nil {
		return err
	}
	if n < 1 {
		return ErrNotReplicated
	}
	return nil
}

// replicatedAt waits (see ackTracker.replicated) on the tracker of a gate
// that sends to the master at addr; nil when no gate does (a single Redis).
func replicatedAt(ctx context.Context, addr string) (err error) {
	var t *ackTracker
	gates.Range(func(k, _ any) bool {
		g := k.(*failoverGate)
		if g.masterAddr() != addr {
			return true
		}
		t = g.acks
		return false
	})
	if t == nil {
		return nil
	}
	return t.replicated(ctx)
}

// mayHaveWritten says whether a write's result may leave a change on the
// master: anything but a refusal before it ran (NOSCRIPT: rueidis sends the
// script again, and that one waits).
func mayHaveWritten(res rueidis.RedisResult) bool {
	err := res.Error()
	if err == nil {
		return true
	}
	if rerr, ok := rueidis.IsRedisErr(err); ok {
		return !rerr.IsNoScript()
	}
	return false
}

package redisconn

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/gomodule/redigo/redis"
)

// SessionStore is scs/redisstore over NewPool's pool, an scs.CtxStore with
// what redisstore lacks: the request's budget bounds each call (through the
// connection's deadlines, limitedConn), a broken pooled connection is retried
// once (a timeout is not), and the request's trace sees what is sent.
type SessionStore struct {
	pool   *redis.Pool
	prefix string
	spare  *atomic.Pointer[lender] // the last call's, for the next
	// slots: one per connection the pool may open (MaxActive), held by a
	// call while it borrows, so a call past the bound waits for one by its
	// own limit and then gives up as a timed-out command does (a 503).
	slots chan struct{}
}

// NewSessionStore returns the store for pool, with keys prefix+token.
func NewSessionStore(pool *redis.Pool, prefix string) SessionStore {
	n := pool.MaxActive
	if n <= 0 {
		n = math.MaxInt32 // no bound; a channel of struct{} holds no buffer
	}
	return SessionStore{pool: pool, prefix: prefix, spare: new(atomic.Pointer[lender]), slots: make(chan struct{}, n)}
}

// lender is a pool that lends the one connection borrowed for a call, kept
// with its redisstore for the next call: making both per call cost three
// allocations. With MaxIdle 0 redigo closes the connection when the store is
// done with it, which gives it back to the real pool, so between calls a
// lender holds nothing. Calls at once each take their own.
type lender struct {
	real  *redis.Pool // SessionStore's
	pool  redis.Pool
	store *redisstore.RedisStore
	ctx   limitedCtx // the call's, while it runs
	conn  redis.Conn // the call's, while it runs
}

func (s SessionStore) newLender() *lender {
	l := &lender{real: s.pool}
	l.pool.Dial = func() (redis.Conn, error) { return l.conn, nil }
	l.store = redisstore.NewWithPrefix(&l.pool, s.prefix)
	return l
}

// Find implements scs.Store.
func (s SessionStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit implements scs.Store.
func (s SessionStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete implements scs.Store.
func (s SessionStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// FindCtx implements scs.CtxStore: one GET.
func (s SessionStore) FindCtx(ctx context.Context, token string) (b []byte, ok bool, err error) {
	err = s.call(ctx, func(rs *redisstore.RedisStore) (err error) {
		b, ok, err = rs.Find(token)
		return err
	})
	return b, ok, err
}

// CommitCtx implements scs.CtxStore: MULTI, SET, PEXPIREAT, EXEC, in one
// round trip, so the value and its expiry land together.
func (s SessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	return s.call(ctx, func(rs *redisstore.RedisStore) error { return rs.Commit(token, b, expiry) })
}

// DeleteCtx implements scs.CtxStore: one DEL.
func (s SessionStore) DeleteCtx(ctx context.Context, token string) error {
	return s.call(ctx, func(rs *redisstore.RedisStore) error { return rs.Delete(token) })
}

// errGaveUp is returned when the session store stopped waiting for Redis.
var errGaveUp = fmt.Errorf("gave up waiting for the session store: %w", context.DeadlineExceeded)

// call runs store (again on a broken connection) on a connection whose I/O
// ends by the budget, DefaultTimeout or ctx's deadline; past it, errGaveUp.
func (s SessionStore) call(ctx context.Context, store func(*redisstore.RedisStore) error) error {
	lim, spend := deadline(ctx, DefaultTimeout)
	defer spend.done()
	if ctx.Err() != nil || !time.Now().Before(lim) || !s.take(ctx, lim) {
		return errGaveUp
	}
	defer func() { <-s.slots }()
	l := s.spare.Swap(nil)
	if l == nil {
		l = s.newLender()
	}
	l.ctx = limitedCtx{Context: ctx, limit: lim}
	err := l.once(&l.ctx, store)
	if kind, _ := Unavailable(err); kind == ConnLost && time.Now().Before(lim) {
		err = l.once(&l.ctx, store)
	}
	l.ctx = limitedCtx{}
	s.spare.Store(l)
	if err != nil && !time.Now().Before(lim) {
		return errGaveUp
	}
	return err
}

// take waits for a slot until lim or ctx's end; false when none came. The
// timer is made only when every slot is taken.
func (s SessionStore) take(ctx context.Context, lim time.Time) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(time.Until(lim))
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// once borrows a connection for ctx and runs store on it through the pool
// that lends only that connection.
func (l *lender) once(ctx context.Context, store func(*redisstore.RedisStore) error) error {
	c, err := l.real.GetContext(ctx)
	if err != nil {
		return err
	}
	l.conn = c
	err = store(l.store)
	l.conn = nil
	return err
}

// limitedCtx is a call's context with its limit (limitOf), kept in the
// call's lender: a context.WithValue and the boxed time were two allocations
// per call.
type limitedCtx struct {
	context.Context
	limit time.Time
}

func (c *limitedCtx) Value(key any) any {
	if key == (limitKey{}) {
		return c.limit
	}
	return c.Context.Value(key)
}

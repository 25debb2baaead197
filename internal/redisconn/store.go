package redisconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alexedwards/scs/redisstore"
	"github.com/gomodule/redigo/redis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// SessionStore is scs/redisstore over NewPool's pool (one string per session
// at prefix+token) with what redisstore, which takes no context, lacks: the
// request's budget bounds each call (the abandoned call ends within the
// pool's timeouts); a call that met a broken pooled connection is sent once
// more (all are idempotent; a timeout is not retried, Redis is hung); each
// command goes into the request's trace. It is an scs.CtxStore.
type SessionStore struct {
	store  *redisstore.RedisStore
	prefix string
	cutKey func(string) string
}

// NewSessionStore returns the store for pool, with keys prefix+token;
// cutKey shows a key the way a trace may (a token cut short).
func NewSessionStore(pool *redis.Pool, prefix string, cutKey func(string) string) SessionStore {
	return SessionStore{store: redisstore.NewWithPrefix(pool, prefix), prefix: prefix, cutKey: cutKey}
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

type found struct {
	b  []byte
	ok bool
}

// FindCtx implements scs.CtxStore: one GET.
func (s SessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	start := time.Now()
	f, err := await(ctx, func() (found, error) {
		b, ok, err := s.store.Find(token)
		return found{b, ok}, err
	})
	reply := "(nil)"
	if f.ok {
		reply = redistrace.Size(len(f.b))
	}
	s.trace(ctx, "GET", token, reply, err, start)
	return f.b, f.ok, err
}

// CommitCtx implements scs.CtxStore: MULTI, SET, PEXPIREAT, EXEC, in one
// round trip, so the value and its expiry land together.
func (s SessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	start := time.Now()
	_, err := await(ctx, func() (struct{}, error) { return struct{}{}, s.store.Commit(token, b, expiry) })
	s.trace(ctx, "MULTI SET PEXPIREAT EXEC", token, "OK", err, start)
	return err
}

// DeleteCtx implements scs.CtxStore: one DEL.
func (s SessionStore) DeleteCtx(ctx context.Context, token string) error {
	start := time.Now()
	_, err := await(ctx, func() (struct{}, error) { return struct{}{}, s.store.Delete(token) })
	s.trace(ctx, "DEL", token, "OK", err, start)
	return err
}

// trace records one call in ctx's trace, if it has one.
func (s SessionStore) trace(ctx context.Context, name, token, reply string, err error, start time.Time) {
	tr := redistrace.From(ctx)
	if tr == nil {
		return
	}
	if err != nil {
		reply = "failed"
		if rerr, ok := errors.AsType[redis.Error](err); ok {
			word, _, _ := strings.Cut(string(rerr), " ")
			reply = "error " + word
		}
	}
	tr.Add(redistrace.Command{Name: name, Key: s.cutKey(s.prefix + token), Reply: reply, Took: time.Since(start)})
}

// errGaveUp is returned when the session store stopped waiting for Redis.
var errGaveUp = fmt.Errorf("gave up waiting for the session store: %w", context.DeadlineExceeded)

// await runs call (and once more on a broken connection) while the
// request's budget and DefaultTimeout last, and returns errGaveUp when
// they end first, without waiting for call to finish.
func await[T any](ctx context.Context, call func() (T, error)) (T, error) {
	ctx, done := limit(ctx, DefaultTimeout)
	defer done()
	var zero T
	if ctx.Err() != nil {
		return zero, errGaveUp
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1) // the call's goroutine never blocks on it
	go func() {
		v, err := call()
		if kind, _ := Unavailable(err); kind == ConnLost && ctx.Err() == nil {
			v, err = call()
		}
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, errGaveUp
	}
}

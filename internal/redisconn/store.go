package redisconn

import (
	"context"
	"time"

	"github.com/redis/rueidis"
)

// SessionStore keeps scs sessions in Redis through the app's rueidis client:
// one string per session at prefix+token, expiring with the session, as
// scs/redisstore keeps them. It replaces scs/redisstore because that store
// takes no context (so no request's budget could reach its commands) and
// needs a second client, a redigo pool, with its own dialing, timeouts and
// idea of which server is the master.
//
// A read, write or delete that failed because the connection broke (Redis
// restarted since it was last used) is sent again: all three are
// idempotent. A timeout is not retried: Redis is hung, and a second wait
// would only spend the rest of the request's budget.
//
// It implements scs.CtxStore, so scs hands it the request's context.
type SessionStore struct {
	client rueidis.Client
	prefix string
}

// NewSessionStore returns the store for client, with keys prefix+token.
func NewSessionStore(client rueidis.Client, prefix string) SessionStore {
	return SessionStore{client: client, prefix: prefix}
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

// FindCtx implements scs.CtxStore.
func (s SessionStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var b []byte
	err := retryBroken(ctx, func() error {
		var err error
		b, err = s.client.Do(ctx, s.client.B().Get().Key(s.prefix+token).Build()).AsBytes()
		return err
	})
	if rueidis.IsRedisNil(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// CommitCtx implements scs.CtxStore. One SET with PXAT: the value and its
// expiry land together, as redisstore's MULTI/SET/PEXPIREAT/EXEC did.
func (s SessionStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	key := s.prefix + token
	if !expiry.After(time.Now()) {
		return s.DeleteCtx(ctx, token) // already over: nothing to keep
	}
	return retryBroken(ctx, func() error {
		return s.client.Do(ctx, s.client.B().Set().Key(key).Value(rueidis.BinaryString(b)).
			Pxat(expiry).Build()).Error()
	})
}

// DeleteCtx implements scs.CtxStore.
func (s SessionStore) DeleteCtx(ctx context.Context, token string) error {
	return retryBroken(ctx, func() error {
		return s.client.Do(ctx, s.client.B().Del().Key(s.prefix+token).Build()).Error()
	})
}

// retryBroken runs an idempotent command again while its connection is broken. The
// client may not have swapped the broken connection yet by the time the
// error reaches us, so it tries twice more, which costs microseconds.
func retryBroken(ctx context.Context, do func() error) error {
	err := do()
	for try := 1; try < 3; try++ {
		if kind, _ := Unavailable(err); kind != ConnLost || ctx.Err() != nil {
			break
		}
		err = do()
	}
	return err
}

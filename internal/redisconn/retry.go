package redisconn

import (
	"context"
	"time"

	"github.com/alexedwards/scs/v2"
)

// RetryStore retries a session read, write or delete once when it failed
// because the pooled connection it used was dead (Redis restarted since the
// connection was last used). All three are idempotent: the retry sends the
// same GET, the same SET of the same bytes, the same DEL. A timeout is not
// retried: Redis is hung, and a second wait would only double the user's.
//
// It is the outermost store, and implements scs.CtxStore so that a request
// whose context has ended is not retried.
type RetryStore struct {
	scs.Store
}

// Find implements scs.Store.
func (s RetryStore) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit implements scs.Store.
func (s RetryStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete implements scs.Store.
func (s RetryStore) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// FindCtx implements scs.CtxStore.
func (s RetryStore) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	b, found, err := s.Store.Find(token)
	if deadConn(ctx, err) {
		b, found, err = s.Store.Find(token)
	}
	return b, found, err
}

// CommitCtx implements scs.CtxStore.
func (s RetryStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	err := s.Store.Commit(token, b, expiry)
	if deadConn(ctx, err) {
		err = s.Store.Commit(token, b, expiry)
	}
	return err
}

// DeleteCtx implements scs.CtxStore.
func (s RetryStore) DeleteCtx(ctx context.Context, token string) error {
	err := s.Store.Delete(token)
	if deadConn(ctx, err) {
		err = s.Store.Delete(token)
	}
	return err
}

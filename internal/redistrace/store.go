package redistrace

import (
	"context"
	"time"

	"github.com/alexedwards/scs/v2"
)

// Store records what a Redis session store (scs/redisstore) sends for a
// traced context. scs hands the request's context to a store that
// implements scs.CtxStore, so this is the outermost store. The names are
// redisstore's commands: Find is a GET, Commit one MULTI/SET/PEXPIREAT/EXEC
// round trip, Delete a DEL. A command the store below retried on a dead
// connection shows once, with the time of both tries.
type Store struct {
	scs.Store
	// Key is the key a page shows for a token: sess:<token> cut short.
	Key func(token string) string
}

// Find implements scs.Store.
func (s Store) Find(token string) ([]byte, bool, error) {
	return s.FindCtx(context.Background(), token)
}

// Commit implements scs.Store.
func (s Store) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

// Delete implements scs.Store.
func (s Store) Delete(token string) error {
	return s.DeleteCtx(context.Background(), token)
}

// FindCtx implements scs.CtxStore.
func (s Store) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	start := time.Now()
	var b []byte
	var found bool
	var err error
	if cs, ok := s.Store.(scs.CtxStore); ok {
		b, found, err = cs.FindCtx(ctx, token)
	} else {
		b, found, err = s.Store.Find(token)
	}
	if tr := From(ctx); tr != nil {
		reply := "(nil)"
		switch {
		case err != nil:
			reply = "failed"
		case found:
			reply = Size(len(b))
		}
		tr.Add(Command{Name: "GET", Key: s.Key(token), Reply: reply, Took: time.Since(start)})
	}
	return b, found, err
}

// CommitCtx implements scs.CtxStore.
func (s Store) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	start := time.Now()
	var err error
	if cs, ok := s.Store.(scs.CtxStore); ok {
		err = cs.CommitCtx(ctx, token, b, expiry)
	} else {
		err = s.Store.Commit(token, b, expiry)
	}
	if tr := From(ctx); tr != nil {
		reply := "OK (" + Size(len(b)) + " written)"
		if err != nil {
			reply = "failed"
		}
		tr.Add(Command{Name: "MULTI SET PEXPIREAT EXEC", Key: s.Key(token), Reply: reply, Took: time.Since(start)})
	}
	return err
}

// DeleteCtx implements scs.CtxStore.
func (s Store) DeleteCtx(ctx context.Context, token string) error {
	start := time.Now()
	var err error
	if cs, ok := s.Store.(scs.CtxStore); ok {
		err = cs.DeleteCtx(ctx, token)
	} else {
		err = s.Store.Delete(token)
	}
	if tr := From(ctx); tr != nil {
		reply := "OK"
		if err != nil {
			reply = "failed"
		}
		tr.Add(Command{Name: "DEL", Key: s.Key(token), Reply: reply, Took: time.Since(start)})
	}
	return err
}

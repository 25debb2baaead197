// Package sessionstack builds what keeps sessions (store, operations, index,
// live hub) for one store mode, for main and the tests alike; each mode gets
// an implementation of every part, never a nil.
package sessionstack

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"
	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/live"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/sessionindex"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// Mode is where sessions live.
type Mode string

const (
	Redis  Mode = "redis"  // in Redis, shared by every instance (the default)
	Memory Mode = "memory" // in this process, to show what that loses
)

// ParseMode reads a mode's name, as -store gives it.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Redis, Memory:
		return m, nil
	}
	return "", fmt.Errorf("must be %s or %s, not %q", Redis, Memory, s)
}

// Index is the per-user list of sessions: sessionindex.Index in Redis,
// sessionindex.None in memory.
type Index interface {
	Add(ctx context.Context, user string, e sessionindex.Entry, oldID string, deadline time.Time) error
	KeepIfListed(ctx context.Context, user, token, gen string) (bool, error)
	List(ctx context.Context, user string) ([]sessionindex.Entry, error)
	Remove(ctx context.Context, user, id string) error
	Revoke(ctx context.Context, user, id string) (sessionindex.Revoked, error)
	RevokeOthers(ctx context.Context, user, keepID string) (sessionindex.Revoked, error)
	Key(user string) (string, bool)
}

// LostSessions records the sessions this process stores, and says whether a
// well-formed token names one that was lost (see sessions.Issued).
type LostSessions interface {
	Add(token string, expiry time.Time)
	Lost(token string) bool
}

// Stack is the wired session machinery.
type Stack struct {
	Ops   sessions.Operations
	Index Index
	Live  *live.Hub // Close it when the server stops
	// Warning says what the mode loses ("" for none): shown on every page.
	Warning string
	// InProcess: sessions live in this process, so no page may say they are
	// in Redis or survive a restart.
	InProcess bool
	// Issued tells a session lost with an earlier process from one that
	// ended: *sessions.Issued in memory, sessions.NeverLost in Redis.
	Issued    LostSessions
	PoolStats func() (inUse, idle int) // the session pool's connections; zero in memory mode

	closePool func() error // the session store's connections
}

// Close closes the session store's connections and the live hub.
func (s *Stack) Close() {
	s.Live.Close()
	if s.closePool != nil {
		_ = s.closePool()
	}
}

// Config is what the stack needs besides its connections.
type Config struct {
	Mode     Mode
	Idle     time.Duration    // idle timeout (sessions.EndsAt)
	Instance string           // recorded in the index as the instance that served a session
	Redis    redisconn.Config // how rdb was connected; scs/redisstore's pool connects the same way
}

// New sets sm's store and codec for cfg.Mode and builds the rest on rdb, the
// app's client; session blobs go through a redigo pool to the same Redis.
// Close the stack when done.
func New(cfg Config, sm *scs.SessionManager, rdb rueidis.Client, log *slog.Logger) (*Stack, error) {
	sm.Codec = sessions.Codec{}
	switch cfg.Mode {
	case Redis:
		pool, err := redisconn.NewPool(cfg.Redis, rdb)
		if err != nil {
			return nil, err
		}
		sm.Store = sessions.IdleStore{Store: redisconn.NewSessionStore(pool, sessions.Prefix), Idle: cfg.Idle}
		ops := sessions.NewOps(rdb)
		ops.Instance, ops.Log = cfg.Instance, log
		index := sessionindex.New(rdb)
		index.Log = log
		stats := func() (int, int) {
			st := pool.Stats()
			return st.ActiveCount - st.IdleCount, st.IdleCount
		}
		return &Stack{Ops: ops, Index: index, Live: live.New(rdb, log),
			Issued: sessions.NeverLost{}, PoolStats: stats, closePool: pool.Close}, nil
	case Memory:
		sm.Store = sessions.IdleStore{Store: memstore.New(), Idle: cfg.Idle}
		hub := live.New(nil, log) // sessions are local, so are their events
		log.Warn("sessions are kept in this process's memory (-store memory): a restart logs everyone out, and other instances do not see these logins")
		return &Stack{
			Ops: &sessions.MemoryOps{Store: sm.Store, Idle: cfg.Idle, Publish: hub.Publish,
				Limit: func(ctx context.Context, s throttle.Step) (time.Duration, error) {
					return throttle.CountStep(ctx, rdb, s, log)
				}},
			Index:     sessionindex.None{},
			Live:      hub,
			Warning:   memoryWarning,
			Issued:    &sessions.Issued{},
			InProcess: true,
			PoolStats: func() (int, int) { return 0, 0 },
		}, nil
	}
	return nil, fmt.Errorf("sessionstack: store mode %q: must be %s or %s", cfg.Mode, Redis, Memory)
}

// memoryWarning is shown on every page with -store memory.
const memoryWarning = "Sessions are kept in this server's memory (-store memory), not in Redis. " +
	"Restart the server and everyone is logged out; a second instance does not know these logins, " +
	"and the sessions page cannot list them. This is the problem the tutorial solves with Redis. " +
	"(Accounts still live in Redis.)"

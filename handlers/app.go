// Package handlers is sessionlab's HTTP layer: the route table, middleware,
// and one file per feature. It renders views and calls internal packages.
package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/inspect"
	"github.com/sessionlab/sessionlab/internal/instances"
	"github.com/sessionlab/sessionlab/internal/live"
	"github.com/sessionlab/sessionlab/internal/metrics"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistrace"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/sessionstack"
	"github.com/sessionlab/sessionlab/internal/throttle"
	"github.com/sessionlab/sessionlab/views"
)

// accountStore is what the auth handlers need of internal/accounts.
type accountStore interface {
	Create(ctx context.Context, username, password string) (accounts.Account, error)
	Authenticate(ctx context.Context, username, password string) (accounts.Account, error)
	Get(ctx context.Context, username string) (accounts.Account, error)
	HashNewPassword(ctx context.Context, password string) (accounts.NewPassword, error)
	SetPassword(ctx context.Context, username string, p accounts.NewPassword) (gen string, err error)
	NewGeneration(ctx context.Context, username string) (gen string, err error)
	Current(ctx context.Context, username, gen string) (bool, error)
	CurrentInRedis(ctx context.Context, username, gen string) (bool, error)
}

// keyInspector reads a key as redis-cli would.
type keyInspector interface {
	Key(ctx context.Context, key string) (inspect.Entry, error)
	Hash(ctx context.Context, key string) (inspect.Entry, error)
}

// App holds the dependencies every handler shares. New builds it.
type App struct {
	Log          *slog.Logger
	Sessions     *scs.SessionManager // Lifetime is the absolute session lifetime
	Ops          sessions.Operations
	Accounts     accountStore
	Inspector    keyInspector
	Ready        func(context.Context) (redisconn.Health, error) // can Redis serve? (see redisconn.Prober)
	LogID        func(token string) string                       // salted short hash for logs
	Index        sessionstack.Index                              // per-user list of sessions
	Live         *live.Hub                                       // pub/sub fan-out to server-sent-event streams
	Instances    *instances.Roster                               // the instances on this Redis (the lab's servers step)
	StreamLimits StreamLimits                                    // a zero field takes its DefaultStreamLimits value
	ConnLimits   ConnLimits                                      // bounds on open client connections (LimitConns); a zero field: none
	Throttle     rateLimiter                                     // limits on password checks, sign-ups, new anonymous sessions and renewals at will; nil: none
	// TrustedProxies may set X-Forwarded-For (see clientIP); empty: none.
	TrustedProxies Proxies

	Instance  string                    // shown on every page
	ProcessID string                    // short random id of this process, new on every start
	Started   time.Time                 // when this process started
	InProcess bool                      // -store memory: no page may say sessions survive a restart
	Issued    sessionstack.LostSessions // tells a session lost with an earlier process from one that ended
	// Restart, when set (-demo-controls), restarts the process once the
	// response to a loopback POST /restart is sent.
	Restart    func()
	Idle       time.Duration // idle timeout, enforced on the server
	TouchEvery time.Duration // how stale "last seen" may get before a request refreshes it
	Banner     string        // shown on every page when set
	Lab        bool          // -lab: a session may weaken itself on /lab (docs/security.md)
	// Redis names the Redis on the panel, never a password; a func, since
	// with Sentinel the master changes.
	Redis func() views.RedisServer

	Metrics           *metrics.Metrics // for Prometheus (OperatorRoutes)
	AccessLog         bool             // log every request at Info (else at Debug)
	ReadyWithoutRedis bool             // /readyz answers 200 while Redis cannot serve (see readyz)

	// Lines many requests can cause (a refusal, an outage, what a client
	// did to its own request), a line a minute per kind (tallylog.go).
	tallies tallyLog
	streams openStreams // open /live streams, by session and address
	// countHints let a logged-in count read its session and count in one
	// round trip (countfirst.go).
	countHints countHints
	// liveKeepAlive is the streams' keep-alive, keepAliveEvery unless a
	// test shortens it.
	liveKeepAlive time.Duration
	draining      atomic.Bool // set by Drain
	closeStack    func()
}

// Drain makes /readyz answer 503 from now on, while every request is served.
func (a *App) Drain() { a.draining.Store(true) }

// Config is what New needs besides its connections: main's flags.
type Config struct {
	Store sessionstack.Mode
	// Redis is how New's client was connected; scs/redisstore's pool
	// connects the same way.
	Redis          redisconn.Config
	Lifetime, Idle time.Duration // absolute and idle session timeouts (sessions.EndsAt)
	CookieSecure   bool
	BcryptCost     int
	Throttle       throttle.Policy
	Streams        StreamLimits // zero fields: DefaultStreamLimits
	Conns          ConnLimits   // zero fields: no bound
	TrustedProxies Proxies
	Instance       string // shown on every page
	LogSalt        []byte // salts the short hashes of tokens in logs (see LogID)
	Lab            bool   // -lab: the lab's switches (see App.Lab)
	// Prober answers /readyz (nil: New makes one); main shares its own so a
	// Redis that refused CONFIG at start is not asked again.
	Prober            *redisconn.Prober
	AccessLog         bool // log every request at Info (-access-log)
	ReadyWithoutRedis bool // /readyz stays 200 while Redis cannot serve (-ready-without-redis)
}

// New builds the App as main serves it and the tests drive it, from the
// client redisconn.Connect returned. Close it when done.
func New(cfg Config, rdb rueidis.Client, log *slog.Logger) (*App, error) {
	redisServer, err := DescribeRedis(cfg.Redis, func() string { return redisconn.MasterAddr(rdb) })
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	m.WatchFailoverGate(redisconn.FailoverGateClosed(rdb))
	prober := cfg.Prober
	if prober == nil {
		prober = redisconn.NewProber(rdb, cfg.Redis.Managed)
	}
	rdb = redisconn.Timed(rdb, m.RedisObserver(metrics.ClientRueidis))
	cfg.Redis.PoolTimes = m.RedisObserver(metrics.ClientRedigo)
	rdb = redistrace.Client(rdb, !cfg.Redis.Managed) // managed: no client-side cache (redisconn.Connect)
	sm := scs.New()
	sm.Lifetime = cfg.Lifetime
	sm.Cookie = SessionCookie(cfg.CookieSecure)
	stack, err := sessionstack.New(sessionstack.Config{Mode: cfg.Store, Idle: cfg.Idle, Instance: cfg.Instance, Redis: cfg.Redis}, sm, rdb, log)
	if err != nil {
		return nil, err
	}
	m.WatchPool(metrics.ClientRedigo, stack.PoolStats)
	m.WatchLiveStreams(func() int { return stack.Live.Stats().Streams })
	// Random, so a restart shows a new id even when the PID stays (re-exec).
	pid := make([]byte, 3)
	_, _ = rand.Read(pid)
	processID := hex.EncodeToString(pid)
	acc := accounts.New(rdb, cfg.BcryptCost)
	acc.Log = log
	return &App{
		Log:            log,
		Sessions:       sm,
		Ops:            stack.Ops,
		Index:          stack.Index,
		Live:           stack.Live,
		Banner:         stack.Warning,
		Issued:         stack.Issued,
		InProcess:      stack.InProcess,
		Accounts:       acc,
		Inspector:      inspect.New(rdb),
		Ready:          prober.Probe,
		LogID:          sessions.LogID(cfg.LogSalt).Func(),
		Instance:       cfg.Instance,
		ProcessID:      processID,
		Instances:      instances.New(rdb, cfg.Instance, processID),
		Started:        time.Now(),
		Idle:           cfg.Idle,
		TouchEvery:     sessions.TouchEvery(cfg.Idle),
		Redis:          redisServer,
		Throttle:       throttleLogging(throttle.New(rdb, cfg.Throttle), log),
		StreamLimits:   cfg.Streams,
		ConnLimits:     cfg.Conns,
		TrustedProxies: cfg.TrustedProxies,
		Lab:            cfg.Lab,
		closeStack:     stack.Close,
		Metrics:        m,
		AccessLog:      cfg.AccessLog,

		ReadyWithoutRedis: cfg.ReadyWithoutRedis,
	}, nil
}

// Close writes the tally lines pending, closes the session store's
// connections and ends every live stream.
func (a *App) Close() {
	a.FlushTallies()
	a.closeStack()
}

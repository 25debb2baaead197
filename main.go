// Command sessionlab serves the "Session Management with Redis" practice app:
// login, a protected profile and a view counter, with sessions in Redis.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sessionlab/sessionlab/handlers"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/requestlog"
	"github.com/sessionlab/sessionlab/internal/sessionstack"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

func main() {
	ctx, stop := signalContext()
	defer stop()
	err := run(ctx, os.Args, os.Getenv, os.Stdout)
	if r, ok := errors.AsType[restartError](err); ok {
		stop()
		err = reexec(r.addr)
	}
	if err != nil {
		reportFailure(os.Stderr, err)
		os.Exit(1)
	}
}

// reportFailure writes why the process stops, as one line in the run's
// -log-format: a log pipeline that parses JSON lines keeps it too.
func reportFailure(w io.Writer, err error) {
	if f, ok := errors.AsType[inLogFormat](err); ok && f.format == "json" {
		requestlog.NewLogger(w, "json", slog.LevelError).Error("exiting with status 1", "err", err.Error())
		return
	}
	fmt.Fprintln(w, "sessionlab:", err)
}

// inLogFormat is a failure of a run whose flags were read: it carries the
// -log-format for reportFailure.
type inLogFormat struct {
	error
	format string
}

func (e inLogFormat) Unwrap() error { return e.error }

// stopSignal is the cause of run's context when a signal ended it: SIGTERM
// drains, Ctrl-C (a person at a terminal) stops at once.
type stopSignal struct{ os.Signal }

func (s stopSignal) Error() string { return "received " + s.Signal.String() }

// signalContext is cancelled, with a stopSignal as its cause, by the first
// SIGINT or SIGTERM.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if sig, ok := <-sigs; ok {
			cancel(stopSignal{sig})
		}
	}()
	return ctx, func() { signal.Stop(sigs); cancel(nil) }
}

// restartGrace bounds how long a restart waits for requests in flight; a
// served request takes milliseconds.
const restartGrace = 2 * time.Second

// restartError: POST /restart (-demo-controls) asked for a fresh process;
// main then execs the binary again on the same address.
type restartError struct{ addr string }

func (restartError) Error() string { return "restart requested" }

// reexec runs the binary afresh in place of this process: same PID, empty
// memory, listening where this one did even if -addr asked for a random port.
func reexec(addr string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return fmt.Errorf("restart: %w", syscall.Exec(exe, withAddr(os.Args, addr), os.Environ()))
}

// withAddr is args with every -addr flag replaced by one for addr.
func withAddr(args []string, addr string) []string {
	out := []string{args[0]}
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		switch name := strings.TrimLeft(a, "-"); {
		case strings.HasPrefix(a, "-") && name == "addr":
			i++ // its value is the next argument
		case strings.HasPrefix(a, "-") && strings.HasPrefix(name, "addr="):
		default:
			out = append(out, a)
		}
	}
	// First, so it is parsed even if a stray argument ends the flags.
	return slices.Insert(out, 1, "-addr", addr)
}

type config struct {
	addr, instance    string
	redis             redisconn.Config
	cookieSecure      bool
	lifetime, idle    time.Duration
	shutdownTimeout   time.Duration
	drain             time.Duration
	bcryptCost        int
	newSessions       int
	class             int
	logLevel          slog.Level
	logFormat         string
	accessLog         bool
	readyWithoutRedis bool
	trustedProxies    handlers.Proxies
	store             sessionstack.Mode
	debugAddr         string
	demoControls      bool
	lab               bool
}

// parseConfig reads flags, each with an environment variable as its default.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	var c config
	env := envReader{getenv: getenv}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", cmp.Or(getenv("ADDR"), ":8080"), "listen address (env ADDR)")
	fs.StringVar(&c.redis.URL, "redis", cmp.Or(getenv("REDIS_URL"), "redis://localhost:6379/0"), "Redis URL for sessions and everything else; Sentinel: redis://sentinel1:26379/0?master_set=mymaster&addr=sentinel2:26379 (env REDIS_URL)")
	fs.StringVar(&c.redis.CA, "redis-ca", getenv("REDIS_CA"), "PEM file of the CA that signed Redis's TLS certificate, for rediss:// with a private CA (env REDIS_CA)")
	fs.StringVar(&c.redis.Cert, "redis-cert", getenv("REDIS_CERT"), "PEM client certificate for rediss://, when Redis asks for one (env REDIS_CERT)")
	fs.StringVar(&c.redis.Key, "redis-key", getenv("REDIS_KEY"), "PEM key of -redis-cert (env REDIS_KEY)")
	fs.StringVar(&c.redis.SentinelUser, "redis-sentinel-user", getenv("REDIS_SENTINEL_USER"), "user for the sentinels, when they have one of their own (env REDIS_SENTINEL_USER)")
	fs.StringVar(&c.redis.SentinelPassword, "redis-sentinel-password", getenv("REDIS_SENTINEL_PASSWORD"), "password for the sentinels (env REDIS_SENTINEL_PASSWORD)")
	fs.StringVar(&c.instance, "instance", getenv("INSTANCE"), "name shown on every page (env INSTANCE; default host:port)")
	fs.BoolVar(&c.cookieSecure, "cookie-secure", env.bool("COOKIE_SECURE"), "send the cookie over HTTPS only, named __Host-session (env COOKIE_SECURE)")
	fs.DurationVar(&c.lifetime, "lifetime", env.duration("SESSION_LIFETIME", 24*time.Hour), "absolute session lifetime (env SESSION_LIFETIME)")
	fs.DurationVar(&c.idle, "idle", env.duration("SESSION_IDLE", 30*time.Minute), "idle timeout, 0 for none (env SESSION_IDLE)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", env.duration("SHUTDOWN_TIMEOUT", 10*time.Second), "how long SIGTERM waits for requests in flight (env SHUTDOWN_TIMEOUT)")
	fs.DurationVar(&c.drain, "drain", env.duration("DRAIN", 5*time.Second), "after SIGTERM, how long /readyz says not ready while requests are still served, so a load balancer stops sending before the listener closes; Ctrl-C skips it (env DRAIN)")
	fs.IntVar(&c.class, "class", env.int("CLASS_SIZE", throttle.DefaultClass),
		"how many students may share one client address (a school's NAT): sizes the limits on one address (env CLASS_SIZE)")
	fs.IntVar(&c.newSessions, "new-sessions", env.int("NEW_SESSIONS", -1),
		fmt.Sprintf("new anonymous sessions allowed per client address per %d minutes, 0 for no limit (env NEW_SESSIONS; default 3 per -class student)", int(throttle.DefaultPolicy.Anonymous.Window.Minutes())))
	fs.IntVar(&c.bcryptCost, "bcrypt-cost", env.int("BCRYPT_COST", bcrypt.DefaultCost), "bcrypt cost for new passwords (env BCRYPT_COST)")
	fs.TextVar(&c.logLevel, "log-level", env.level("LOG_LEVEL"), "debug, info, warn or error (env LOG_LEVEL)")
	store := fs.String("store", cmp.Or(getenv("STORE"), string(sessionstack.Redis)), "where sessions live: redis, or memory to show what is lost without Redis (env STORE)")
	fs.BoolVar(&c.demoControls, "demo-controls", env.bool("DEMO_CONTROLS"), "show \"Restart this server\" (POST /restart, loopback clients only) for classroom demos (env DEMO_CONTROLS)")
	fs.StringVar(&c.debugAddr, "debug-addr", getenv("DEBUG_ADDR"), "serve the operator's pages (/metrics, /debug/live, /debug/pprof/) on this separate address, e.g. 127.0.0.1:9191; off when empty (env DEBUG_ADDR)")
	fs.StringVar(&c.logFormat, "log-format", cmp.Or(getenv("LOG_FORMAT"), "text"), "log lines as text or json (env LOG_FORMAT)")
	fs.BoolVar(&c.accessLog, "access-log", env.bool("ACCESS_LOG"), "log every request at info level: method, route, status, duration, client address, request id (env ACCESS_LOG)")
	fs.BoolVar(&c.readyWithoutRedis, "ready-without-redis", env.bool("READY_WITHOUT_REDIS"), "answer /readyz with 200 while Redis cannot serve (the body says why): for instances behind one load balancer that share one Redis; see docs/deploy.md (env READY_WITHOUT_REDIS)")
	fs.IntVar(&c.redis.PoolSize, "redis-pool", env.int("REDIS_POOL", redisconn.DefaultPoolSize),
		"most connections the session store opens to Redis; a request past them waits for one within its Redis budget, then gets the 503 of an outage (env REDIS_POOL)")
	fs.BoolVar(&c.redis.Managed, "redis-managed", env.bool("REDIS_MANAGED"), "for a managed Redis that forbids CLIENT TRACKING, ROLE, CONFIG or INFO: send none of them (no client-side caching); see docs/deploy.md (env REDIS_MANAGED)")
	fs.BoolVar(&c.lab, "lab", env.bool("LAB"), "the lab's Session Security switches: a session may weaken itself on /lab (no HttpOnly, no renewal at login); see docs/security.md (env LAB)")
	proxies := fs.String("trusted-proxies", getenv("TRUSTED_PROXIES"), "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed; none when empty (env TRUSTED_PROXIES)")
	if env.err != nil {
		return c, env.err
	}
	if err := fs.Parse(args[1:]); err != nil {
		return c, err
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return c, fmt.Errorf("-log-format or LOG_FORMAT=%q: must be text or json", c.logFormat)
	}
	var err error
	if c.trustedProxies, err = handlers.ParseTrustedProxies(*proxies); err != nil {
		return c, fmt.Errorf("-trusted-proxies: %w", err)
	}
	if c.store, err = sessionstack.ParseMode(*store); err != nil {
		return c, fmt.Errorf("-store: %w", err)
	}
	if c.lifetime <= 0 || c.idle < 0 {
		return c, errors.New("-lifetime must be positive and -idle not negative")
	}
	if c.drain < 0 {
		return c, errors.New("-drain must not be negative")
	}
	if c.class < 1 {
		return c, errors.New("-class must be at least 1")
	}
	if c.redis.PoolSize < 1 {
		return c, errors.New("-redis-pool must be at least 1")
	}
	if c.newSessions < 0 {
		c.newSessions = throttle.ForClass(c.class).Anonymous.Max
	}
	if c.bcryptCost < bcrypt.MinCost || c.bcryptCost > bcrypt.MaxCost {
		return c, fmt.Errorf("-bcrypt-cost must be %d to %d", bcrypt.MinCost, bcrypt.MaxCost)
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) (err error) {
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = inLogFormat{err, cfg.logFormat}
		}
	}()
	log := requestlog.NewLogger(stdout, cfg.logFormat, cfg.logLevel)

	cfg.redis.Log = log
	rdb, err := redisconn.Connect(ctx, cfg.redis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	// Shared with /readyz: once Redis refuses CONFIG, neither asks again.
	prober := redisconn.NewProber(rdb, cfg.redis.Managed)
	if policy, err := prober.MemoryPolicy(ctx); err != nil {
		log.Warn("cannot read Redis's maxmemory-policy; it should be noeviction", "err", err)
	} else if warning := redisconn.PolicyWarning(policy); warning != "" {
		log.Warn(warning, "maxmemory-policy", policy)
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	instance := cfg.instance
	if instance == "" {
		host, _ := os.Hostname()
		instance = net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	app, err := handlers.New(handlers.Config{
		Store:          cfg.store,
		Redis:          cfg.redis,
		Lifetime:       cfg.lifetime,
		Idle:           cfg.idle,
		CookieSecure:   cfg.cookieSecure,
		BcryptCost:     cfg.bcryptCost,
		Throttle:       throttlePolicy(cfg.class, cfg.newSessions),
		Streams:        handlers.StreamLimitsForClass(cfg.class),
		Conns:          handlers.ConnLimitsFor(cfg.class, openFilesLimit(), cfg.redis.PoolSize),
		TrustedProxies: cfg.trustedProxies,
		Instance:       instance,
		LogSalt:        salt,
		Prober:         prober,
		AccessLog:      cfg.accessLog,

		ReadyWithoutRedis: cfg.readyWithoutRedis,
		Lab:               cfg.lab,
	}, rdb, log)
	if err != nil {
		return err
	}
	defer app.Close()
	restart := make(chan struct{}, 1)
	if cfg.demoControls {
		app.Restart = func() {
			select {
			case restart <- struct{}{}:
			default:
			}
		}
	}
	srv := newServer(app.Routes(), log)
	// Shutdown waits for requests in flight, and an event stream never ends
	// by itself, so every stream is ended at once.
	srv.RegisterOnShutdown(app.EndStreams)
	srv.RegisterOnShutdown(app.Live.Close)

	// Announced before serving: an instance started beside others is known
	// to them by the time it answers (the lab's servers step).
	stopAnnounce := app.Instances.Run(log)
	defer stopAnnounce()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(handlers.OneWriteListener(srv, app.LimitConns(ln))) }()
	if cfg.debugAddr != "" {
		dln, err := net.Listen("tcp", cfg.debugAddr)
		if err != nil {
			return fmt.Errorf("listen on -debug-addr %s: %w", cfg.debugAddr, err)
		}
		debug := &http.Server{Handler: app.OperatorRoutes(), ReadHeaderTimeout: 5 * time.Second}
		defer debug.Close()
		go func() { _ = debug.Serve(dln) }()
		log.Info("debug listener", "addr", dln.Addr().String())
	}
	log.Info("listening", "addr", ln.Addr().String(), "url", browserURL(ln.Addr()), "instance", instance,
		"process", app.ProcessID, "redis", redisconn.Redact(cfg.redis.URL), "redis_pool", cfg.redis.PoolSize, "store", cfg.store,
		"lifetime", cfg.lifetime, "idle", cfg.idle, "demo_controls", cfg.demoControls, "lab", cfg.lab,
		"connections_max", app.ConnLimits.PerProcess)
	policy, streams := throttlePolicy(cfg.class, cfg.newSessions), handlers.StreamLimitsForClass(cfg.class)
	if want := handlers.ConnLimitsFor(cfg.class, 0, 0).PerAddress; app.ConnLimits.PerAddress < want {
		log.Warn("too few open files for the class: one client address may hold fewer connections than -class needs; raise RLIMIT_NOFILE (LimitNOFILE=)",
			"connections", app.ConnLimits.PerAddress, "class_needs", want, "connections_max", app.ConnLimits.PerProcess, "nofile", openFilesLimit())
	}
	log.Info("limits on one client address, sized for a class behind it (-class)", "class", cfg.class,
		"signups_per_hour", policy.Signup.Max, "failed_logins_per_15m", policy.Address.Max,
		"new_sessions_per_10m", policy.Anonymous.Max, "live_streams", streams.PerAddress, "connections", app.ConnLimits.PerAddress,
		"per_account", fmt.Sprintf("%d failed logins per 5m from one address, %d from new addresses", policy.Pair.Max, policy.Account.Max))

	var restarting bool
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
		if sig, ok := errors.AsType[stopSignal](context.Cause(ctx)); ok && sig.Signal == syscall.SIGTERM && cfg.drain > 0 {
			drain(srv, app, cfg.drain, log)
		}
	case <-restart:
		restarting = true
		log.Warn("restarting: POST /restart asked for a fresh process")
	}
	// Stop accepting, let requests in flight finish (and their session writes land).
	timeout := cfg.shutdownTimeout
	if restarting {
		// The classroom waits, refused, until the new process listens: a
		// request still in flight after restartGrace is a slow or stalled
		// client, which must not hold the demo up for the whole timeout.
		timeout = min(timeout, restartGrace)
	}
	log.Info("shutting down", "timeout", timeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// A restart comes back all the same: the classroom needs its server
		// more than a request that would not finish.
		log.Warn("shutdown timed out: closing the connections left", "err", err)
		_ = srv.Close()
		if !restarting {
			return fmt.Errorf("shutdown: %w", err)
		}
	}
	// No request is left to count: the tally lines pending are written
	// before "stopped", not lost with the process.
	app.FlushTallies()
	log.Info("stopped")
	if restarting {
		return restartError{addr: ln.Addr().String()}
	}
	return nil
}

// drain keeps serving for d while /readyz says not ready, so a load balancer
// takes the instance out first; without keep-alives a proxy meets only a
// refused connection afterwards, which it may safely retry elsewhere.
func drain(srv *http.Server, app *handlers.App, d time.Duration, log *slog.Logger) {
	log.Info("draining: /readyz says not ready; still serving", "drain", d)
	app.Drain()
	srv.SetKeepAlivesEnabled(false)
	time.Sleep(d)
}

// browserURL is where a browser on this machine reaches addr: a wildcard
// listener (":8080") is reached at localhost.
func browserURL(addr net.Addr) string {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return ""
	}
	host := ap.Addr().Unmap().String()
	if ap.Addr().IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(int(ap.Port()))) + "/"
}

// throttlePolicy is ForClass(class) with -new-sessions as the limit on new
// anonymous sessions (load tests turn it off).
func throttlePolicy(class, newSessions int) throttle.Policy {
	p := throttle.ForClass(class)
	p.Anonymous.Max = newSessions
	return p
}

// newServer is the app's HTTP server, every timeout set, so a slow client
// cannot hold a connection and a goroutine forever.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// envReader reads flag defaults from the environment; a value that does not
// parse (COOKIE_SECURE=yes) stops the start instead of giving the default.
type envReader struct {
	getenv func(string) string
	err    error
}

func (e *envReader) fail(name, value, want string) {
	if e.err == nil {
		e.err = fmt.Errorf("environment variable %s=%q is not %s", name, value, want)
	}
}

func (e *envReader) bool(name string) bool {
	s := e.getenv(name)
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		e.fail(name, s, "a boolean (true or false, 1 or 0)")
	}
	return b
}

func (e *envReader) duration(name string, def time.Duration) time.Duration {
	s := e.getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		e.fail(name, s, "a duration (such as 30m, 24h or 10s)")
		return def
	}
	return d
}

func (e *envReader) int(name string, def int) int {
	s := e.getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		e.fail(name, s, "a whole number")
		return def
	}
	return n
}

func (e *envReader) level(name string) slog.Level {
	s := e.getenv(name)
	var l slog.Level
	if s != "" && l.UnmarshalText([]byte(s)) != nil {
		e.fail(name, s, "a log level (debug, info, warn or error)")
	}
	return l
}

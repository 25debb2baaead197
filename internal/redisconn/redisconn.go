// Package redisconn owns the app's connections to Redis (the rueidis client
// and scs/redisstore's redigo pool), their time limits, and which errors mean
// "Redis cannot serve right now" (Unavailable), decided nowhere else.
package redisconn

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// ParseURL reads a Redis URL the way rueidis does; its errors leave the URL
// out, since it may hold a password.
func ParseURL(s string) (rueidis.ClientOption, error) {
	opt, err := rueidis.ParseURL(s)
	if uerr, ok := errors.AsType[*url.Error](err); ok {
		err = uerr.Err
	}
	return opt, err
}

// Config is how to reach Redis.
type Config struct {
	URL                            string       // redis://, rediss:// or unix://; Sentinel: ?master_set=name&addr=...
	CA, Cert, Key                  string       // PEM files for rediss://; Redis asks for a client certificate by default
	SentinelUser, SentinelPassword string       // when they differ from the URL's, which are Redis's
	Log                            *slog.Logger // what the client does on its own; nil: slog's default
	// Managed: a managed Redis that may forbid CLIENT TRACKING, ROLE, CONFIG
	// and INFO, so none is sent (no client-side caching, PING for ROLE).
	Managed   bool
	PoolTimes Observer // when set, times each call on the session pool's connections
	// PoolSize is the most connections the session pool opens at once; 0:
	// DefaultPoolSize.
	PoolSize int
}

// urlOptions are the URL options the app honours; any other would be
// overridden or not apply, so it is refused at start instead of ignored.
var urlOptions = map[string]bool{"db": true, "master_set": true, "addr": true, "skip_verify": true, "client_name": true}

// options turns cfg into the client's options, refusing what the app
// cannot honour.
func (cfg Config) options() (rueidis.ClientOption, error) {
	opt, err := ParseURL(cfg.URL)
	if err != nil {
		return opt, err
	}
	u, _ := url.Parse(cfg.URL) // it parsed above
	for name := range u.Query() {
		if !urlOptions[name] {
			return opt, fmt.Errorf("URL option %q is not supported (the app honours %s)", name, "db, master_set, addr, skip_verify and client_name")
		}
	}
	if set, ok := u.Query()["master_set"]; ok && strings.TrimSpace(set[0]) == "" {
		return opt, errors.New("?master_set= is empty: name the master as the sentinels know it (?master_set=mymaster), or drop the option to use one Redis directly")
	}
	if opt.Sentinel.MasterSet == "" && len(opt.InitAddress) > 1 {
		return opt, errors.New("several addresses without ?master_set=: the app talks to one Redis, or to sentinels (Redis Cluster is not supported)")
	}
	if cfg.CA != "" || cfg.Cert != "" || cfg.Key != "" {
		if opt.TLSConfig == nil {
			return opt, errors.New("-redis-ca, -redis-cert and -redis-key need a rediss:// URL")
		}
		if err := addTLSFiles(opt.TLSConfig, cfg.CA, cfg.Cert, cfg.Key); err != nil {
			return opt, err
		}
	}
	if opt.Sentinel.MasterSet != "" {
		// The sentinels speak TLS when Redis does, with the same files.
		opt.Sentinel.TLSConfig = opt.TLSConfig
		opt.Sentinel.Username, opt.Sentinel.Password = cfg.SentinelUser, cfg.SentinelPassword
		opt.Sentinel.Dialer.Timeout = DialTimeout
		// A missed +switch-master (sentinel connection down) would bind the
		// client to a demoted master for good; asking every 2 s recovers.
		opt.Sentinel.TopologyRefreshInterval = 2 * time.Second
	}
	if cfg.Managed {
		if opt.Sentinel.MasterSet != "" {
			return opt, errors.New("-redis-managed is for a managed Redis behind one endpoint: following Sentinel needs ROLE")
		}
		// No CLIENT TRACKING: DoCache falls back to Do, one round trip each.
		opt.DisableCache = true
	}
	opt.ForceSingleClient = opt.Sentinel.MasterSet == "" // never probe for a cluster: refused below
	opt.DialCtxFn = handshakeTraced(opt.DialCtxFn)
	// Redis 7.0 refuses CLIENT SETINFO (it is 7.2's) and MONITOR does not
	// print it: a request's trace would list a command no one sees.
	opt.ClientSetInfo = rueidis.DisableClientSetInfo
	// Every request that meets a broken connection waits for one dial,
	// whatever its own deadline, so the dial must fit a request's budget.
	opt.Dialer.Timeout = DialTimeout
	opt.ConnWriteTimeout = DefaultTimeout // also how soon a background PING gives a silent connection up
	// Client-side caching stays on: every logged-in request reads its account,
	// and Redis invalidates the copies when it changes.
	// 64 KiB buffers, not rueidis's 0.5 MiB: the largest command or reply of a
	// request is a few KB, and three connections' 3 MiB of buffers raised
	// the GC's heap goal, so the peak RSS at 200 connections (go tool task bench).
	opt.ReadBufferEachConn, opt.WriteBufferEachConn = connBuffer, connBuffer
	return opt, nil
}

// connBuffer is each rueidis connection's read and write buffer.
const connBuffer = 64 << 10

// handshakeTraced dials as rueidis does (or as dial does: unix:// sets one)
// and lets the dialing request's trace see the new connection's handshake:
// rueidis dials with the context of the command that needs a connection.
func handshakeTraced(dial func(context.Context, string, *net.Dialer, *tls.Config) (net.Conn, error)) func(context.Context, string, *net.Dialer, *tls.Config) (net.Conn, error) {
	return func(ctx context.Context, addr string, d *net.Dialer, tc *tls.Config) (c net.Conn, err error) {
		switch {
		case dial != nil:
			c, err = dial(ctx, addr, d, tc)
		case tc != nil:
			c, err = (&tls.Dialer{NetDialer: d, Config: tc}).DialContext(ctx, "tcp", addr)
		default:
			c, err = d.DialContext(ctx, "tcp", addr)
		}
		if err != nil {
			return nil, err
		}
		return redistrace.WatchHandshake(ctx, c), nil
	}
}

func addTLSFiles(tc *tls.Config, ca, cert, key string) error {
	if ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return fmt.Errorf("-redis-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-redis-ca: no PEM certificate in %s", ca)
		}
		tc.RootCAs = pool
	}
	if (cert == "") != (key == "") {
		return errors.New("-redis-cert and -redis-key go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return fmt.Errorf("-redis-cert/-redis-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return nil
}

// Connect opens the app's Redis client, the one place it is built, and checks
// that it answers, is a master and is not a cluster (else a one-line cause).
func Connect(ctx context.Context, cfg Config) (rueidis.Client, error) {
	where := Redact(cfg.URL)
	opt, err := cfg.options()
	if err != nil {
		return nil, fmt.Errorf("Redis URL %s: %w", where, err)
	}
	noClientCert := opt.TLSConfig != nil && len(opt.TLSConfig.Certificates) == 0
	rdb, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, startError(where, noClientCert, wrongKind(opt, err))
	}
	checkCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	check := checkServer
	if cfg.Managed {
		check = ping // ROLE and INFO may be forbidden: only "it answers"
	}
	if err := check(checkCtx, rdb); err != nil {
		rdb.Close()
		return nil, startError(where, noClientCert, wrongKind(opt, err))
	}
	if opt.Sentinel.MasterSet != "" {
		// No command reaches a master the sentinels are replacing.
		rdb = gateFailovers(rdb, opt, cmp.Or(cfg.Log, slog.Default()))
	}
	return Bound(rdb, DefaultTimeout), nil
}

// errNotMaster, errSentinel and errCluster are what checkServer refuses.
var (
	errNotMaster = errors.New("it is a replica, not a master: point -redis at the master, or at the sentinels with ?master_set=")
	errSentinel  = errors.New("it is a Sentinel: add ?master_set=<name> (the master's name in sentinel.conf) and &addr= for each other sentinel")
	errCluster   = errors.New("it is a Redis Cluster node, and the app does not support Cluster (see docs/deploy.md)")
)

// Mistakes of kind: the URL asks for another kind of server than answers.
var (
	errNotSentinel = errors.New("it is not a Sentinel (it does not know SENTINEL): ?master_set= is for the sentinels' addresses; drop it to use this Redis directly")
	errNotTLS      = errors.New("it does not speak TLS on this port: use redis://, or the port Redis serves TLS on")
	errTLSPort     = errors.New("it speaks TLS on this port: use rediss:// (with -redis-ca for a private CA)")
)

// probeTimeout bounds each question wrongKind asks.
const probeTimeout = time.Second

// wrongKind turns a symptom (an unknown command, a reset, a timeout) into the
// mistake of kind, by asking the address once more the other way, or returns err.
func wrongKind(opt rueidis.ClientOption, err error) error {
	if len(opt.InitAddress) == 0 || strings.HasPrefix(opt.InitAddress[0], "/") {
		return err // a unix socket: no TLS, no sentinels
	}
	addr := opt.InitAddress[0]
	if opt.Sentinel.MasterSet != "" && strings.Contains(err.Error(), "unknown command 'SENTINEL'") {
		return errNotSentinel
	}
	kind, ok := Unavailable(err)
	if !ok || kind != ConnLost && kind != TimedOut {
		return err
	}
	if opt.TLSConfig != nil && speaksPlainRedis(addr) {
		return errNotTLS
	}
	if opt.TLSConfig == nil && speaksTLS(addr) {
		return errTLSPort
	}
	return err
}

// speaksPlainRedis: a PING in plain text at addr gets a Redis reply.
func speaksPlainRedis(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	b := make([]byte, 16)
	n, _ := conn.Read(b)
	return n > 0 && (b[0] == '+' || b[0] == '-')
}

// speaksTLS: a TLS handshake at addr gets a TLS answer (a server that
// wants a client certificate may still refuse this one: it spoke TLS).
func speaksTLS(addr string) bool {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: probeTimeout}, Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // only asks whether the port speaks TLS; nothing is sent
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		conn.Close()
		return true
	}
	_, alert := errors.AsType[tls.AlertError](err)
	return alert
}

// checkServer asks the server for its role and whether it is a cluster node.
func checkServer(ctx context.Context, c rueidis.Client) error {
	res := c.DoMulti(ctx, c.B().Role().Build(), c.B().Info().Section("cluster").Build())
	role, err := res[0].ToArray()
	if err != nil {
		return err
	}
	if len(role) == 0 {
		return errors.New("ROLE: empty reply")
	}
	switch r, _ := role[0].ToString(); r {
	case "master":
	case "sentinel":
		return errSentinel
	default:
		return errNotMaster
	}
	if info, err := res[1].ToString(); err == nil && strings.Contains(info, "cluster_enabled:1") {
		return errCluster
	}
	return nil
}

// ping checks that the server answers, for a managed Redis (Config.Managed).
func ping(ctx context.Context, c rueidis.Client) error {
	return c.Do(ctx, c.B().Ping().Build()).Error()
}

// startError is one line that says why the app cannot use the Redis at
// where, and what to do. noClientCert: TLS without a client certificate.
func startError(where string, noClientCert bool, err error) error {
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	msg := err.Error()
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
		return fmt.Errorf("no Redis answers at %s (connection refused): start one with `go tool task run` (or `redis-server`), or point -redis/REDIS_URL at yours", where)
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return fmt.Errorf("Redis at %s: its TLS certificate is not trusted (%v): pass its CA with -redis-ca", where, err)
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"):
		return fmt.Errorf("Redis at %s wants a client certificate (%v): pass -redis-cert and -redis-key", where, err)
	case errors.Is(err, errNotMaster), errors.Is(err, errCluster), errors.Is(err, errSentinel),
		errors.Is(err, errNotSentinel), errors.Is(err, errNotTLS), errors.Is(err, errTLSPort):
		return fmt.Errorf("Redis at %s: %w", where, err)
	}
	if kind, ok := Unavailable(err); ok {
		switch kind {
		case ConnLost:
			if noClientCert {
				// TLS 1.3: a server that wants a certificate says so only by
				// closing the connection after the handshake.
				return fmt.Errorf("Redis at %s closed the TLS connection (%v): it wants a client certificate unless tls-auth-clients is no; pass -redis-cert and -redis-key", where, err)
			}
		case "WRONGPASS", "NOAUTH":
			return fmt.Errorf("Redis at %s refused the credentials (%v): check the user and password in the URL", where, err)
		case TimedOut:
			return fmt.Errorf("Redis at %s did not answer in time (%v): is it hung, or is this a TLS port reached without rediss://?", where, err)
		}
	}
	return fmt.Errorf("Redis at %s: %v", where, strings.ReplaceAll(msg, "\n", " "))
}

// DialTimeout bounds a new connection (TCP, TLS, HELLO); requests all wait
// for the same dial, so it is no longer than one command's limit.
const DialTimeout = DefaultTimeout

// Redact hides a password in a Redis URL before it is logged.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(one that does not parse)"
	}
	return u.Redacted()
}

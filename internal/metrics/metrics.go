// Package metrics is what sessionlab tells Prometheus, from one Metrics value
// with its own registry, served only on the operator's listener (-debug-addr).
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every family. Build it with New; all methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec   // method, route, code
	duration      *prometheus.HistogramVec // method, route
	unavailable   *prometheus.CounterVec   // kind
	created       prometheus.Counter
	renewed       prometheus.Counter
	ended         *prometheus.CounterVec   // cause
	logins        *prometheus.CounterVec   // outcome
	redisDuration *prometheus.HistogramVec // client
	connsRefused  *prometheus.CounterVec   // bound
	streamsMoved  prometheus.Counter

	unmatched *Route
}

// The Redis clients, as the client label names them.
const (
	ClientRueidis = "rueidis" // everything but the session blobs
	ClientRedigo  = "redigo"  // the pool scs/redisstore keeps sessions through
)

// Why a session ended (sessionlab_sessions_ended_total's cause label).
const (
	EndLogout             = "logout"              // POST /logout
	EndRevoked            = "revoked"             // revoked from the sessions page, or "log out everywhere else"
	EndPasswordChange     = "password_change"     // another session of a user who changed the password
	EndCredentialsChanged = "credentials_changed" // found out of date on its next request (any instance)
	EndExpired            = "expired"             // past its idle or absolute deadline
)

// Login outcomes (sessionlab_logins_total's outcome label).
const (
	LoginOK        = "ok"
	LoginWrong     = "wrong"     // unknown user or wrong password
	LoginThrottled = "throttled" // refused by the throttle before the password was checked
	LoginBusy      = "busy"      // every password-hashing slot stayed taken: not checked (accounts.ErrBusy)
)

// The bounds on open client connections (sessionlab_connections_refused_total's
// bound label).
const (
	ConnBoundAddress = "address" // one client address (IPv6: its /64)
	ConnBoundProcess = "process" // the whole process, below RLIMIT_NOFILE
)

// New registers every family, the Go runtime's and the process's.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := factory{m.reg}
	m.requests = f.counterVec("sessionlab_http_requests_total",
		"HTTP requests answered, by route pattern (\"none\": no route matched) and status code.", "method", "route", "code")
	m.duration = f.histogramVec("sessionlab_http_request_duration_seconds",
		"Time from a request's arrival to its handler's return (for /live: the stream's life).",
		[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}, "method", "route")
	m.unavailable = f.counterVec("sessionlab_redis_unavailable_responses_total",
		"Requests answered 503 because Redis could not serve, by failure kind (see redisconn.Kind).", "kind")
	m.created = f.counter("sessionlab_sessions_created_total", "Sessions first written to the store.")
	m.renewed = f.counter("sessionlab_sessions_renewed_total", "Session tokens renewed (login, password change, log out everywhere else).")
	m.ended = f.counterVec("sessionlab_sessions_ended_total", "Sessions ended by the app, by cause.", "cause")
	m.logins = f.counterVec("sessionlab_logins_total", "Login attempts by outcome.", "outcome")
	m.redisDuration = f.histogramVec("sessionlab_redis_command_duration_seconds",
		"Time each Redis call took as the caller waited for it (a pipeline or transaction counts once), by client.",
		[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}, "client")
	m.connsRefused = f.counterVec("sessionlab_connections_refused_total",
		"Client connections closed as soon as accepted, before any request, because a bound on open connections was reached.", "bound")
	m.streamsMoved = f.counter("sessionlab_live_streams_ended_for_room_total",
		"Event streams (/live) ended when the process bound was full, to make room for a stream from an address holding fewer; the page asks again after Retry-After.")
	for _, b := range []string{ConnBoundAddress, ConnBoundProcess} {
		m.connsRefused.WithLabelValues(b)
	}
	for _, c := range []string{EndLogout, EndRevoked, EndPasswordChange, EndCredentialsChanged, EndExpired} {
		m.ended.WithLabelValues(c)
	}
	for _, o := range []string{LoginOK, LoginWrong, LoginThrottled, LoginBusy} {
		m.logins.WithLabelValues(o)
	}
	for _, c := range []string{ClientRueidis, ClientRedigo} {
		m.redisDuration.WithLabelValues(c)
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.unmatched = m.Route("", "none")
	return m
}

// Handler serves the registry in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Route is one route pattern's request counters and latency, looked up once
// when the route is registered, so a request costs no label hashing.
type Route struct {
	path     string
	pattern  string
	byCode   *prometheus.CounterVec
	duration prometheus.Observer
	codes    [600]atomic.Pointer[prometheus.Counter]
}

// Route returns the metrics of a route pattern ("GET /count"), split into
// method and path.
func (m *Metrics) Route(method, path string) *Route {
	pattern := path
	if method != "" {
		pattern = method + " " + path
	}
	return &Route{
		path:     path,
		pattern:  pattern,
		byCode:   m.requests.MustCurryWith(prometheus.Labels{"method": method, "route": path}),
		duration: m.duration.WithLabelValues(method, path),
	}
}

// RouteOf is Route for a ServeMux pattern such as "GET /count" or "/".
func (m *Metrics) RouteOf(pattern string) *Route {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "", pattern
	}
	return m.Route(method, path)
}

// Path is the route's pattern without its method ("none" for Unmatched),
// as the access log names it.
func (r *Route) Path() string { return r.path }

// Pattern is the route as the route table declares it, method and path
// ("GET /count", "/restart"; "none" for Unmatched): a few fixed names,
// whatever the client sends.
func (r *Route) Pattern() string { return r.pattern }

// Unmatched is the Route of requests no pattern matched (404, 405).
func (m *Metrics) Unmatched() *Route { return m.unmatched }

// Observe records one answered request.
func (r *Route) Observe(code int, d time.Duration) {
	r.duration.Observe(d.Seconds())
	if code < 0 || code >= len(r.codes) {
		r.byCode.WithLabelValues(strconv.Itoa(code)).Inc()
		return
	}
	c := r.codes[code].Load()
	if c == nil {
		counter := r.byCode.WithLabelValues(strconv.Itoa(code))
		r.codes[code].CompareAndSwap(nil, &counter)
		c = r.codes[code].Load()
	}
	(*c).Inc()
}

// Unavailable counts a 503 answered because Redis could not serve.
func (m *Metrics) Unavailable(kind string) { m.unavailable.WithLabelValues(kind).Inc() }

// SessionCreated counts a session first written to the store.
func (m *Metrics) SessionCreated() { m.created.Inc() }

// SessionRenewed counts a session given a new token.
func (m *Metrics) SessionRenewed() { m.renewed.Inc() }

// SessionsEnded counts n sessions ended for cause (one of the End consts).
func (m *Metrics) SessionsEnded(cause string, n int) {
	if n > 0 {
		m.ended.WithLabelValues(cause).Add(float64(n))
	}
}

// Login counts a login attempt's outcome (one of the Login consts).
func (m *Metrics) Login(outcome string) { m.logins.WithLabelValues(outcome).Inc() }

// ConnectionRefused counts a client connection closed at a bound (one of
// the ConnBound consts).
func (m *Metrics) ConnectionRefused(bound string) { m.connsRefused.WithLabelValues(bound).Inc() }

// LiveStreamEndedForRoom counts a stream ended to make room for another
// address's.
func (m *Metrics) LiveStreamEndedForRoom() { m.streamsMoved.Inc() }

// WatchLiveStreams exports how many event streams (/live) are open, as
// streams says when scraped.
func (m *Metrics) WatchLiveStreams(streams func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sessionlab_live_streams", Help: "Event streams (/live) open now.",
	}, func() float64 { return float64(streams()) }))
}

// RedisObserver is the latency histogram of one Redis client.
func (m *Metrics) RedisObserver(client string) prometheus.Observer {
	return m.redisDuration.WithLabelValues(client)
}

// PoolStats reports a connection pool's connections in use and idle.
type PoolStats func() (inUse, idle int)

// WatchPool exports a pool's connections by state. Register it once per
// pool.
func (m *Metrics) WatchPool(client string, stats PoolStats) {
	m.reg.MustRegister(poolCollector{
		desc: prometheus.NewDesc("sessionlab_redis_pool_connections",
			"Connections of a Redis client's pool, by state (in_use, idle).", []string{"state"},
			prometheus.Labels{"client": client}),
		stats: stats,
	})
}

type poolCollector struct {
	desc  *prometheus.Desc
	stats PoolStats
}

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	inUse, idle := c.stats()
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(inUse), "in_use")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(idle), "idle")
}

// WatchFailoverGate exports whether the Sentinel failover gate holds Redis
// commands back now (1) or not (0).
func (m *Metrics) WatchFailoverGate(closed func() bool) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sessionlab_redis_failover_gate_closed",
		Help: "1 while a Sentinel failover is under way and every Redis command is refused (503 \"failing over\"), else 0.",
	}, func() float64 {
		if closed() {
			return 1
		}
		return 0
	}))
}

type factory struct{ reg *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.reg.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.reg.MustRegister(c)
	return c
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	f.reg.MustRegister(h)
	return h
}

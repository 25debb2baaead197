package process

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// scrape reads the app's /metrics from its debug listener.
func scrape(t *testing.T, debug string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(debug + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return families
}

// sample is the value of the family's sample with the given labels (all of
// them must match), and whether there is one.
func sample(families map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := families[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// After real traffic, every family the app promises has samples, each
// counts what happened, and /metrics is not on the public listener.
func TestMetricsAfterTraffic(t *testing.T) {
	rs := redistest.Start(t)
	p := apptest.Start(t, bin, "-redis", rs.URL(), "-debug-addr", "127.0.0.1:0")
	debug := p.DebugURL()
	laptop, phone, guesser := apptest.Client(t), apptest.Client(t), apptest.Client(t)

	if s, _ := apptest.Get(t, laptop, p.URL+"/metrics"); s != http.StatusNotFound {
		t.Errorf("/metrics on the public listener: %d, want 404", s)
	}
	if s, _ := apptest.Get(t, laptop, p.URL+"/debug/live"); s != http.StatusNotFound {
		t.Errorf("/debug/live on the public listener: %d, want 404", s)
	}
	creds := url.Values{"username": {"metrics"}, "password": {"metrics-password"}}
	if s := apptest.PostForm(t, laptop, p.URL+"/register", creds); s != http.StatusSeeOther {
		t.Fatalf("register: %d", s)
	}
	for range 3 {
		apptest.Get(t, laptop, p.URL+"/count")
	}
	if s := apptest.PostForm(t, phone, p.URL+"/login", creds); s != http.StatusSeeOther {
		t.Fatalf("login: %d", s)
	}
	wrong := url.Values{"username": {"metrics"}, "password": {"not-the-password"}}
	if s := apptest.PostForm(t, phone, p.URL+"/login", wrong); s != http.StatusUnauthorized {
		t.Fatalf("wrong login: %d", s)
	}
	// Wrong passwords from one client for one account, until the throttle steps in.
	throttled := false
	for range 10 {
		if s := apptest.PostForm(t, guesser, p.URL+"/login", wrong); s == http.StatusTooManyRequests {
			throttled = true
			break
		}
	}
	if !throttled {
		t.Fatal("ten wrong logins were never throttled")
	}
	if s := apptest.PostForm(t, laptop, p.URL+"/sessions/revoke-others", nil); s != http.StatusSeeOther {
		t.Fatalf("log out everywhere else: %d", s)
	}
	stream := apptest.OpenStream(t, laptop, p.URL+"/live")
	if stream.Status != http.StatusOK {
		t.Fatalf("/live: %d", stream.Status)
	}

	// A request is counted once its handler returns, which may be a moment
	// after the client has the whole answer: scrape until the counts are in.
	m := scrape(t, debug)
	settle := func(name string, labels ...string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); m = scrape(t, debug) {
			if _, ok := sample(m, name, labels...); ok {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	settle("sessionlab_http_requests_total", "route", "/sessions/revoke-others", "code", "303")
	for _, name := range []string{
		"sessionlab_http_requests_total", "sessionlab_http_request_duration_seconds",
		"sessionlab_sessions_created_total", "sessionlab_sessions_renewed_total", "sessionlab_sessions_ended_total",
		"sessionlab_logins_total", "sessionlab_live_streams", "sessionlab_redis_command_duration_seconds",
		"sessionlab_redis_pool_connections", "sessionlab_redis_failover_gate_closed", "sessionlab_connections_refused_total",
		"sessionlab_live_streams_ended_for_room_total", "go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_open_fds",
	} {
		if f := m[name]; f == nil || len(f.Metric) == 0 {
			t.Errorf("%s: no samples", name)
		}
	}
	atLeast := func(want float64, name string, labels ...string) {
		t.Helper()
		if v, ok := sample(m, name, labels...); !ok || v < want {
			t.Errorf("%s%v = %v (present %v), want at least %v", name, labels, v, ok, want)
		}
	}
	exactly := func(want float64, name string, labels ...string) {
		t.Helper()
		if v, ok := sample(m, name, labels...); !ok || v != want {
			t.Errorf("%s%v = %v (present %v), want %v", name, labels, v, ok, want)
		}
	}
	atLeast(3, "sessionlab_http_requests_total", "method", "GET", "route", "/count", "code", "200")
	atLeast(1, "sessionlab_http_requests_total", "method", "POST", "route", "/register", "code", "303")
	atLeast(2, "sessionlab_http_requests_total", "route", "none", "code", "404")
	atLeast(3, "sessionlab_http_request_duration_seconds", "route", "/count")
	atLeast(1, "sessionlab_sessions_created_total")
	atLeast(1, "sessionlab_sessions_created_total") // the laptop's registration, the phone's first login
	atLeast(1, "sessionlab_sessions_renewed_total") // the laptop's revoke-others
	exactly(1, "sessionlab_sessions_ended_total", "cause", "revoked")
	exactly(1, "sessionlab_logins_total", "outcome", "ok")
	atLeast(2, "sessionlab_logins_total", "outcome", "wrong")
	exactly(1, "sessionlab_logins_total", "outcome", "throttled")
	exactly(1, "sessionlab_live_streams")
	atLeast(1, "sessionlab_redis_command_duration_seconds", "client", "rueidis")
	atLeast(1, "sessionlab_redis_command_duration_seconds", "client", "redigo")
	atLeast(1, "sessionlab_redis_pool_connections", "client", "redigo", "state", "idle")
	exactly(0, "sessionlab_redis_failover_gate_closed")
	exactly(0, "sessionlab_connections_refused_total", "bound", "address")
	exactly(0, "sessionlab_live_streams_ended_for_room_total")

	if s := apptest.PostForm(t, laptop, p.URL+"/logout", nil); s != http.StatusSeeOther {
		t.Fatalf("logout: %d", s)
	}
	// Redis goes away: requests answer 503, counted by the kind of failure.
	rs.Stop()
	if s, _ := apptest.Get(t, apptest.Client(t), p.URL+"/count"); s != http.StatusServiceUnavailable {
		t.Fatalf("count without Redis: %d, want 503", s)
	}
	m = scrape(t, debug)
	settle("sessionlab_http_requests_total", "route", "/count", "code", "503")
	exactly(1, "sessionlab_sessions_ended_total", "cause", "logout")
	// The kind is "connection lost" or "connection refused", by timing.
	if v, ok := sample(m, "sessionlab_redis_unavailable_responses_total"); !ok || v < 1 {
		t.Errorf("sessionlab_redis_unavailable_responses_total: %v (present %v), want a 503 counted by kind", v, ok)
	}
	atLeast(1, "sessionlab_http_requests_total", "route", "/count", "code", "503")
}

// Every response carries a request id; one sent by a trusted proxy is kept,
// anyone else's is replaced. With -log-format json -access-log, every line
// is a JSON object, the access line names route, status, duration, client
// address and request id and never the session token, and the other lines
// of the request carry the same id.
func TestRequestIDsAndJSONAccessLog(t *testing.T) {
	rs := redistest.Start(t)
	behindProxy := apptest.Start(t, bin, "-redis", rs.URL(), "-log-format", "json", "-access-log",
		"-trusted-proxies", "127.0.0.1/32")
	direct := apptest.Start(t, bin, "-redis", rs.URL())

	register := func(base, id string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/register",
			strings.NewReader(url.Values{"username": {"rid" + id[:4]}, "password": {"request-id-password"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Request-Id", id)
		resp, err := apptest.Client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := register(behindProxy.URL, "from-nginx-0123")
	if got := resp.Header.Get("X-Request-Id"); got != "from-nginx-0123" {
		t.Errorf("behind a trusted proxy: X-Request-Id %q, want the proxy's", got)
	}
	var token string
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			token = c.Value
		}
	}
	if token == "" {
		t.Fatal("registration set no session cookie")
	}
	resp = register(direct.URL, "client-made-id-01")
	if got := resp.Header.Get("X-Request-Id"); got == "" || got == "client-made-id-01" {
		t.Errorf("from an untrusted client: X-Request-Id %q, want a new one", got)
	}
	if s, _ := apptest.Get(t, apptest.Client(t), direct.URL+"/healthz"); s != http.StatusOK {
		t.Fatal("healthz")
	}

	// The access line is written once the response is sent.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(behindProxy.Log(), `"msg":"request"`); {
		if time.Now().After(deadline) {
			t.Fatalf("no access line:\n%s", behindProxy.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(behindProxy.Log(), token) {
		t.Errorf("the log holds the session token")
	}
	var access, created map[string]any
	sc := bufio.NewScanner(strings.NewReader(behindProxy.Log()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		switch {
		case line["msg"] == "request" && line["route"] == "/register":
			access = line
		case line["msg"] == "account created":
			created = line
		}
	}
	if access == nil || created == nil {
		t.Fatalf("no access line or no \"account created\" line:\n%s", behindProxy.Log())
	}
	for k, want := range map[string]any{"method": "POST", "status": float64(303), "client_ip": "127.0.0.1", "request_id": "from-nginx-0123"} {
		if access[k] != want {
			t.Errorf("access line %s = %v, want %v (%v)", k, access[k], want, access)
		}
	}
	if _, ok := access["duration_ms"]; !ok {
		t.Errorf("access line without duration: %v", access)
	}
	if created["request_id"] != "from-nginx-0123" {
		t.Errorf("a line logged during the request has request_id %v, want the request's", created["request_id"])
	}
	if strings.Contains(direct.Log(), `msg=request `) {
		t.Errorf("without -access-log the app logged an access line:\n%s", direct.Log())
	}
}

// The binary refuses an environment value that does not parse: exit 1, one
// line on stderr naming the variable and the value, before anything starts.
func TestBinaryRefusesAnUnparsableEnvironmentValue(t *testing.T) {
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	cmd.Env = append(apptest.Env(), "COOKIE_SECURE=yes")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("COOKIE_SECURE=yes: %v, want exit status 1", err)
	}
	line := strings.TrimSuffix(stderr.String(), "\n")
	if strings.Contains(line, "\n") || !strings.Contains(line, `COOKIE_SECURE="yes"`) {
		t.Errorf("stderr %q: want one line naming COOKIE_SECURE and yes", stderr.String())
	}
}

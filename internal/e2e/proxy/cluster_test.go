package proxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// clusterState is what `cluster` writes to <dir>/cluster.json.
type clusterState struct {
	PID       int
	URL       string
	Cert      string
	Redis     []string
	Sentinels []string
	Apps      map[string]struct {
		Addr string
		PID  int
	}
	PIDs map[string]int
}

// cluster is `go tool task cluster` run by a test: its program, on free
// ports, in a temp dir.
type cluster struct {
	t      *testing.T
	bin    string
	dir    string
	state  clusterState
	cmd    *exec.Cmd
	out    printed
	exited chan struct{}
}

// printed is what a cluster printed, readable while it runs.
type printed struct {
	mu   sync.Mutex
	text strings.Builder
}

// follow copies the output of cmd (started, stdout its pipe) until it
// exits, then waits for it and closes exited; ready closes at the line
// that says the cluster serves.
func (p *printed) follow(cmd *exec.Cmd, stdout io.Reader) (ready, exited chan struct{}) {
	ready, exited = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.text.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.HasPrefix(sc.Text(), "open https://localhost:") {
				close(ready)
			}
		}
		_ = cmd.Wait()
	}()
	return ready, exited
}

func (p *printed) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.text.String()
}

// The instances drain for 1 s when they restart, not the default 5 s: nginx
// does not poll /readyz, so the period only has to outlast the requests it
// has already sent.
var clusterAppArgs = []string{"-drain", "1s"}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("cluster test: skipped with -short")
	}
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx is not installed, so the proxy path (nginx, TLS, HTTP/2, three instances) is not tested; " +
			"apt-get install nginx (.ci/run does) to run it")
	}
	dir := t.TempDir()
	c := &cluster{t: t, bin: filepath.Join(dir, "cluster"), dir: filepath.Join(dir, "data")}
	if out, err := exec.Command("go", "build", "-o", c.bin, "github.com/sessionlab/sessionlab/internal/cluster").CombinedOutput(); err != nil {
		t.Fatalf("build the cluster command: %v\n%s", err, out)
	}
	c.start()
	return c
}

// start runs the cluster (again) on free ports in c.dir and waits until it
// serves; the test's end stops it as Ctrl-C does.
func (c *cluster) start() {
	t := c.t
	t.Helper()
	cmd := exec.Command(c.bin, append([]string{"-dir", c.dir, "-app", bin, "-free-ports", "--"}, clusterAppArgs...)...)
	cmd.Env = append(apptest.Env(), "BCRYPT_COST=4")
	cmd.SysProcAttr = apptest.DieWithParent()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.cmd = cmd
	ready, exited := c.out.follow(cmd, stdout)
	c.exited = exited
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		// Ctrl-C: the cluster stops what it started.
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the cluster did not stop within 30 s of an interrupt")
		}
		if t.Failed() {
			for _, name := range []string{"app1", "app2", "app3", "nginx-error", "redis-1", "redis-2", "sentinel-1", "sentinel-2", "sentinel-3"} {
				b, _ := os.ReadFile(filepath.Join(c.dir, "logs", name+".log"))
				t.Logf("%s.log, its last 30 lines:\n%s", name, lastLines(string(b), 30))
				if strings.HasPrefix(name, "app") {
					t.Logf("%s.log, its warnings and errors (every process):\n%s", name, warnings(string(b), 60))
				}
			}
		}
	})
	select {
	case <-ready:
	case <-exited:
		t.Fatalf("the cluster exited at start:\n%s", c.output())
	case <-time.After(90 * time.Second):
		t.Fatalf("the cluster did not start within 90 s:\n%s", c.output())
	}
	c.readState()
}

// warnings are a log's WARN and ERROR lines, and its starts and stops (n lines at most, the last).
func warnings(s string, n int) string {
	var keep []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") ||
			strings.Contains(line, "msg=listening") || strings.Contains(line, "msg=draining") || strings.Contains(line, `msg="shutting down"`) {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep[max(0, len(keep)-n):], "")
}

// lastLines is the end of a log, n lines at most.
func lastLines(s string, n int) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}

// output is what the cluster printed so far.
func (c *cluster) output() string { return c.out.String() }

// readState reads cluster.json again (PIDs change when processes restart).
func (c *cluster) readState() {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "cluster.json"))
	if err == nil {
		c.state = clusterState{}
		err = json.Unmarshal(b, &c.state)
	}
	if err != nil {
		c.t.Fatalf("cluster.json: %v", err)
	}
}

// run runs a subcommand (failover, restart-app) as the tasks do.
func (c *cluster) run(args ...string) string {
	c.t.Helper()
	out, err := exec.Command(c.bin, append([]string{args[0], "-dir", c.dir}, args[1:]...)...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("cluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// client is a browser that trusts the cluster's certificate and speaks
// HTTP/2 to nginx.
func (c *cluster) client() *http.Client {
	c.t.Helper()
	pem, err := os.ReadFile(c.state.Cert)
	if err != nil {
		c.t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		Timeout:       10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

var countIn = regexp.MustCompile(`data-testid="view-count"[^>]*>(\d+)<`)

var servedBy = regexp.MustCompile(`data-testid="instance">[^<]*<code>([^<]+)</code>`)

// fetch does a request through nginx and checks it went over HTTP/2.
func (c *cluster) fetch(hc *http.Client, req *http.Request) (*http.Response, string) {
	c.t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.ProtoMajor != 2 {
		c.t.Fatalf("%s %s went over %s, want HTTP/2", req.Method, req.URL.Path, resp.Proto)
	}
	return resp, string(b)
}

// count GETs /count and returns the count and the instance that served it.
func (c *cluster) count(hc *http.Client) (n int, instance string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.state.URL+"count", nil)
	resp, body := c.fetch(hc, req)
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET /count: %d\n%s", resp.StatusCode, c.explain(body))
	}
	n, err := strconv.Atoi(apptest.ViewCount(c.t, body))
	m := servedBy.FindStringSubmatch(body)
	if err != nil || m == nil {
		c.t.Fatalf("GET /count: no count or instance in the page\n%s", body)
	}
	return n, m[1]
}

var (
	problemRe = regexp.MustCompile(`data-testid="problem-message">([^<]*)`)
	traceRe   = regexp.MustCompile(`(?s)<li data-testid="trace-command"[^>]*>(.*?)</li>`)
	tagsRe    = regexp.MustCompile(`<[^>]*>`)
)

// explain is what a failed page says (its problem, its Redis trace) and the
// log of the instance that served it, short enough to be read in CI's
// output; the whole page when it is not one of ours.
func (c *cluster) explain(body string) string {
	m, p := servedBy.FindStringSubmatch(body), problemRe.FindStringSubmatch(body)
	if m == nil || p == nil {
		return body
	}
	var b strings.Builder
	fmt.Fprintf(&b, "served by %s: %s\ntrace:\n", m[1], html.UnescapeString(p[1]))
	for _, li := range traceRe.FindAllStringSubmatch(body, -1) {
		fmt.Fprintf(&b, "  %s\n", html.UnescapeString(tagsRe.ReplaceAllString(li[1], "")))
	}
	log, _ := os.ReadFile(filepath.Join(c.dir, "logs", m[1]+".log"))
	fmt.Fprintf(&b, "%s.log:\n%s", m[1], log)
	return b.String()
}

// The proxy path as an operator deploys it: nginx with TLS and HTTP/2 in
// front of three instances, round-robin with no sticky sessions. One
// logged-in browser counts across all three, keeps its live stream, and
// survives an instance's restart without logging in again; nothing it was
// told is lost.
func TestClusterBehindNginx(t *testing.T) {
	c := startCluster(t)
	hc := c.client()
	origin := strings.TrimSuffix(c.state.URL, "/")

	// A POST with Origin and no Sec-Fetch-Site (as older browsers and
	// some clients send): nginx must pass the Host with its port, or the
	// app sees a cross-origin request. The client's own X-Forwarded-For is
	// a claim nginx replaces.
	form := url.Values{"username": {"nia"}, "password": {"nia-password"}}
	req, _ := http.NewRequest(http.MethodPost, c.state.URL+"register", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	resp, body := c.fetch(hc, req)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("register through nginx: %d, want 303\n%s", resp.StatusCode, body)
	}
	if sc := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(sc, "__Host-session=") || !strings.Contains(sc, "Secure") {
		t.Errorf("session cookie %q, want __Host-session, Secure (-cookie-secure)", sc)
	}
	// HSTS from nginx, once: it terminates TLS (docs/deploy.md).
	if h := resp.Header.Values("Strict-Transport-Security"); len(h) != 1 || h[0] != "max-age=300" {
		t.Errorf("Strict-Transport-Security %q, want one max-age=300", h)
	}
	// The documented way to trust the certificate from a shell.
	if _, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command("curl", "-sS", "--cacert", c.state.Cert, "-o", "/dev/null", "-w", "%{http_code}", c.state.URL+"healthz").CombinedOutput()
		if err != nil || string(out) != "200" {
			t.Errorf("curl --cacert %s %shealthz: %v %s", c.state.Cert, c.state.URL, err, out)
		}
	}

	stream := apptest.OpenStream(t, hc, c.state.URL+"live")
	if stream.Status != http.StatusOK {
		t.Fatalf("GET /live through nginx: %d", stream.Status)
	}
	seen := map[string]int{}
	want := 0
	countTo := func(n int) {
		t.Helper()
		for range n {
			want++
			got, instance := c.count(hc)
			if got != want {
				t.Fatalf("count %d answered %d (served by %s)", want, got, instance)
			}
			seen[instance]++
		}
		// The stream carries every count, unbuffered, whichever instance
		// counted it and whichever holds the stream.
		for {
			if ev := stream.Next("count"); ev.Data == strconv.Itoa(want) {
				break
			}
		}
	}
	countTo(12)
	if len(seen) != 3 {
		t.Errorf("12 counts were served by %v, want all three instances (round-robin)", seen)
	}

	// An instance restarts: the browser stays logged in and counts on. Its
	// stream may have been on that instance; a browser opens it again.
	t.Log(strings.TrimSpace(c.run("restart-app", "app2")))
	stream.Close()
	stream = apptest.OpenStream(t, hc, c.state.URL+"live")
	seen = map[string]int{}
	countTo(12)
	if seen["app2"] == 0 {
		t.Errorf("no count served by the restarted app2: %v", seen)
	}
	req, _ = http.NewRequest(http.MethodGet, c.state.URL+"profile", nil)
	if resp, body := c.fetch(hc, req); resp.StatusCode != http.StatusOK || !strings.Contains(body, "nia") {
		t.Errorf("profile after the restart: %d, want 200 logged in as nia", resp.StatusCode)
	}

	// Sentinel fails the master over while the browser counts. Every count
	// acknowledged (200) is kept but for the one in flight at the switch
	// (Redis replicates asynchronously, see docs/deploy.md); a count may
	// answer 503 (and may or may not have counted); nothing answers 500; and
	// soon every instance counts on the new master.
	var (
		mu                                     sync.Mutex
		acked, failed, streak, last, backwards = 0, 0, 0, want, 0
		statuses                               = map[int]int{}
		problems                               []string
	)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := hc.Get(c.state.URL + "count")
			var b []byte
			if err == nil {
				b, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			switch {
			case err != nil:
				failed, streak = failed+1, 0
				problems = append(problems, err.Error())
			case resp.StatusCode != http.StatusOK:
				failed, streak = failed+1, 0
				statuses[resp.StatusCode]++
				if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
					problems = append(problems, fmt.Sprintf("status %d (Retry-After %q)", resp.StatusCode, resp.Header.Get("Retry-After")))
				}
			default:
				statuses[resp.StatusCode]++
				n := -1
				if m := countIn.FindSubmatch(b); m != nil {
					n, _ = strconv.Atoi(string(m[1]))
				}
				if n <= last {
					backwards++
					if n < last-1 || backwards > 1 {
						problems = append(problems, fmt.Sprintf("a 200 with count %d after %d", n, last))
					}
				}
				last, acked, streak = n, acked+1, streak+1
			}
			mu.Unlock()
			time.Sleep(30 * time.Millisecond) // a quick clicker, not a flood
		}
	}()
	time.Sleep(300 * time.Millisecond) // some counts before the switch
	switched := time.Now()
	t.Log(strings.TrimSpace(c.run("failover")))
	// Then the instances count on the new master: six 200s in a row (each
	// instance twice, round-robin).
	mu.Lock()
	streak = 0
	mu.Unlock()
	for deadline := time.Now().Add(45 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		s := streak
		mu.Unlock()
		if s >= 6 {
			t.Logf("counting again %v after the failover command returned", time.Since(switched).Round(100*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("45 s after the failover, counts still fail (%d in a row succeed)", s)
			break
		}
	}
	close(stop)
	<-done
	final, _ := c.count(hc)
	t.Logf("through the failover: %d counts acknowledged (%d of them not kept), %d failed; statuses %v", acked, backwards, failed, statuses)
	if len(problems) > 0 {
		t.Errorf("during the failover: %s", strings.Join(problems, "; "))
	}
	if lo, hi := want+acked+1-backwards, want+acked+failed+1; final < lo || final > hi {
		t.Errorf("after the failover the count is %d; %d before, %d acknowledged, %d failed: want %d..%d", final, want, acked, failed, lo, hi)
	}
	want = final
	countTo(6) // every instance on the new master, and the stream still hears counts

	// The client's address comes from nginx, not from what it claims.
	req, _ = http.NewRequest(http.MethodGet, c.state.URL+"sessions", nil)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	if _, body := c.fetch(hc, req); !strings.Contains(body, `data-testid="session-ip">127.0.0.1<`) || strings.Contains(body, "203.0.113.9") {
		t.Errorf("the sessions page does not show the real client address 127.0.0.1 alone")
	}
}

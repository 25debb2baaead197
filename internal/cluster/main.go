// Command cluster is `go tool task cluster`: sessionlab as an operator would
// run it on loopback (nginx, three app instances, Redis with Sentinel),
// restarting whatever exits. Subcommands: failover, restart-app, stop.
// The guide is docs/deploy.md.
package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// masterName is the name the sentinels know the master by.
const masterName = "mymaster"

//go:embed nginx.conf
var nginxConf string

func main() {
	stopWithParent()
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// Ports are where the cluster listens, all on 127.0.0.1.
type Ports struct {
	HTTPS     int   // nginx
	HTTP      int   // nginx, only redirecting to HTTPS (what port 80 does on a server)
	Apps      []int // one instance each: app1, app2, ...
	Redis     []int // two: master and replica, in either role
	Sentinels []int // three
}

// defaultPorts are the documented ones (docs/deploy.md).
var defaultPorts = Ports{HTTPS: 8443, HTTP: 8090, Apps: []int{8091, 8092, 8093}, Redis: []int{6385, 6386}, Sentinels: []int{26385, 26386, 26387}}

func (p Ports) all() []int {
	return slices.Concat([]int{p.HTTPS, p.HTTP}, p.Apps, p.Redis, p.Sentinels)
}

func run(args []string, out io.Writer) error {
	cmd := "up"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("cluster "+cmd, flag.ContinueOnError)
	dir := fs.String("dir", ".data/cluster", "where configuration, certificates, Redis data and logs live")
	app := fs.String("app", ".task/sessionlab", "the sessionlab binary (up)")
	freePorts := fs.Bool("free-ports", false, "pick free ports instead of the ones below (up; for tests and a second cluster)")
	https := fs.Int("https-port", defaultPorts.HTTPS, "nginx's TLS port (up)")
	httpPort := fs.Int("http-port", defaultPorts.HTTP, "nginx's plain HTTP port, which only redirects to HTTPS (up)")
	appPorts := portsFlag(fs, "app-ports", defaultPorts.Apps, "one port per app instance, comma-separated (up)")
	redisPorts := portsFlag(fs, "redis-ports", defaultPorts.Redis, "the two Redis servers' ports (up)")
	sentinelPorts := portsFlag(fs, "sentinel-ports", defaultPorts.Sentinels, "the three sentinels' ports (up)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	switch cmd {
	case "up":
		p := Ports{HTTPS: *https, HTTP: *httpPort, Apps: *appPorts, Redis: *redisPorts, Sentinels: *sentinelPorts}
		if len(p.Apps) < 1 || len(p.Redis) != 2 || len(p.Sentinels) != 3 {
			return errors.New("want at least one -app-ports, two -redis-ports and three -sentinel-ports")
		}
		for name, port := range map[string]int{"-https-port": p.HTTPS, "-http-port": p.HTTP} {
			if port <= 0 || port > 65535 {
				return fmt.Errorf("%s %d is not a port", name, port)
			}
		}
		// Arguments after the flags go to every app instance.
		return up(abs, *app, p, *freePorts, fs.Args(), out)
	case "failover":
		return failover(abs, out)
	case "restart-app":
		return restartApps(abs, fs.Args(), out)
	case "stop":
		return stopCluster(abs, out)
	}
	return fmt.Errorf("unknown command %q (up, failover, restart-app, stop)", cmd)
}

// portsFlag is a comma-separated list of ports.
func portsFlag(fs *flag.FlagSet, name string, def []int, usage string) *[]int {
	v := slices.Clone(def)
	fs.Func(name, fmt.Sprintf("%s (default %s)", usage, joinPorts(def)), func(s string) error {
		v = v[:0]
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 || n > 65535 {
				return fmt.Errorf("%q is not a port", f)
			}
			v = append(v, n)
		}
		return nil
	})
	return &v
}

func joinPorts(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// State is what a running cluster writes to <dir>/cluster.json, for the
// subcommands and tests.
type State struct {
	PID       int            // this program
	URL       string         // https://localhost:port/
	HTTP      string         // http://localhost:port/, redirecting to URL
	Stopping  bool           // it is stopping: a new start waits for it
	Cert      string         // the certificate nginx presents (self-signed)
	Redis     []string       // redis-1, redis-2 (either may be the master)
	Sentinels []string       // host:port of each sentinel
	Apps      map[string]App // by instance name
	PIDs      map[string]int // every process by name: nginx, app1, redis-1, sentinel-1, ...
}

// App is one running instance.
type App struct {
	Addr string
	PID  int
}

func stateFile(dir string) string { return filepath.Join(dir, "cluster.json") }

func readState(dir string) (State, error) {
	var s State
	b, err := os.ReadFile(stateFile(dir))
	if errors.Is(err, os.ErrNotExist) {
		return s, fmt.Errorf("no cluster is running from %s (start one with: go tool task cluster)", dir)
	}
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	return s, err
}

// cluster is the running set of processes.
type cluster struct {
	dir   string
	out   io.Writer
	mu    sync.Mutex
	state State
}

func (c *cluster) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.out, format+"\n", args...)
}

// setPID records a (re)started process in cluster.json.
func (c *cluster) setPID(name string, pid int) {
	c.mu.Lock()
	c.state.PIDs[name] = pid
	if a, ok := c.state.Apps[name]; ok {
		a.PID = pid
		c.state.Apps[name] = a
	}
	c.mu.Unlock()
	if err := c.save(); err != nil {
		c.logf("cluster: %v", err)
	}
}

func (c *cluster) save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := json.MarshalIndent(c.state, "", "  ")
	tmp := stateFile(c.dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, stateFile(c.dir))
}

// choosePorts checks that the ports are free (a process already there would
// pass the readiness checks of one that failed to start), or picks free ones.
func choosePorts(p Ports, free bool) (Ports, error) {
	if !free {
		for _, port := range p.all() {
			l, err := net.Listen("tcp", addr(port))
			if err != nil {
				return p, fmt.Errorf("port %d is in use; the cluster needs %v free (choose others with -https-port, -http-port, -app-ports, -redis-ports, -sentinel-ports, or -free-ports)", port, p.all())
			}
			l.Close()
		}
		return p, nil
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	next := func() (int, error) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		ls = append(ls, l)
		return l.Addr().(*net.TCPAddr).Port, nil
	}
	var err error
	for _, port := range []*int{&p.HTTPS, &p.HTTP} {
		if *port, err = next(); err != nil {
			return p, err
		}
	}
	for _, list := range []*[]int{&p.Apps, &p.Redis, &p.Sentinels} {
		*list = slices.Clone(*list)
		for i := range *list {
			if (*list)[i], err = next(); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func up(dir, appBin string, ports Ports, free bool, appArgs []string, out io.Writer) error {
	for _, b := range []string{"nginx", "redis-server", "redis-cli"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s is not installed (go tool task cluster installs it with apt-get)", b)
		}
	}
	if _, err := os.Stat(appBin); err != nil {
		return fmt.Errorf("the app binary: %w (go tool task cluster builds it)", err)
	}
	appBin, _ = filepath.Abs(appBin)
	for _, d := range []string{"logs", "nginx-tmp", "tls"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	lock, err := lockDir(dir, out)
	if err != nil {
		return err
	}
	defer lock.Close()
	cert, key, err := localhostCert(filepath.Join(dir, "tls"))
	if err != nil {
		return err
	}
	// SIGHUP too: task returns at once on Ctrl-C, and the hang-up that follows
	// must not cut the stop short.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	stopWithGoTool()
	defer os.Remove(stateFile(dir))
	// A free port may be taken before the process that needs it binds it
	// (by another program, or as the local port of an outgoing connection):
	// with -free-ports the cluster then stops what it started and chooses
	// again, as a start on other ports after a stop would.
	for attempt := 1; ; attempt++ {
		p, err := choosePorts(ports, free)
		if err != nil {
			return err
		}
		err = runOn(ctx, dir, appBin, p, cert, key, appArgs, out)
		if free && attempt < 3 && errors.Is(err, errPortTaken) {
			fmt.Fprintf(out, "%v\na port was taken after it was chosen; choosing free ports again\n", err)
			continue
		}
		return err
	}
}

// runOn starts every process of the cluster on the ports p and supervises
// them until ctx is done, then stops them.
func runOn(ctx context.Context, dir, appBin string, p Ports, cert, key string, appArgs []string, out io.Writer) error {
	c := &cluster{dir: dir, out: out, state: State{
		PID:   os.Getpid(),
		URL:   fmt.Sprintf("https://localhost:%d/", p.HTTPS),
		HTTP:  fmt.Sprintf("http://localhost:%d/", p.HTTP),
		Cert:  cert,
		Apps:  map[string]App{},
		PIDs:  map[string]int{},
		Redis: []string{addr(p.Redis[0]), addr(p.Redis[1])},
	}}
	for _, s := range p.Sentinels {
		c.state.Sentinels = append(c.state.Sentinels, addr(s))
	}
	stopped := false // by a signal, once it ran
	defer func() {
		if stopped {
			c.logf("the cluster stopped; its data stays in %s", dir)
		}
	}()

	// Stopped in reverse order: nginx first, so no request reaches a stopping
	// instance; sentinels before Redis, so they do not fail over a stopping master.
	var groups [][]*service
	defer func() {
		for _, g := range slices.Backward(groups) {
			stopServices(g)
		}
	}()
	startGroup := func(g []*service) error {
		groups = append(groups, nil)
		for _, s := range g {
			ready := make(chan error, 1)
			go c.supervise(s, ready)
			// Only what was started is stopped.
			groups[len(groups)-1] = append(groups[len(groups)-1], s)
			if err := <-ready; err != nil {
				return err
			}
		}
		return nil
	}

	redis, sentinels, err := c.redisServices(p)
	if err != nil {
		return err
	}
	if err := startGroup(redis); err != nil {
		return err
	}
	if err := c.waitReplicaInSync(); err != nil {
		return err
	}
	if err := startGroup(sentinels); err != nil {
		return err
	}
	var apps []*service
	var appAddrs []string
	for i, port := range p.Apps {
		name := fmt.Sprintf("app%d", i+1)
		apps = append(apps, c.appService(name, addr(port), appBin, appArgs))
		appAddrs = append(appAddrs, addr(port))
		c.mu.Lock() // the supervisors read it
		c.state.Apps[name] = App{Addr: addr(port)}
		c.mu.Unlock()
	}
	if err := startGroup(apps); err != nil {
		return err
	}
	nginx, err := c.nginxService(p, cert, key, appAddrs)
	if err != nil {
		return err
	}
	if err := startGroup([]*service{nginx}); err != nil {
		return err
	}
	if err := c.save(); err != nil {
		return err
	}
	c.logf("sessionlab cluster: nginx (TLS, HTTP/2) round-robin over %s, Redis %s, sentinels %s",
		strings.Join(slices.Sorted(maps.Keys(c.state.Apps)), " "), strings.Join(c.state.Redis, " "), strings.Join(c.state.Sentinels, " "))
	c.logf("the instances ask the sentinels for the master: -redis '%s'", c.redisURL())
	c.logf("logs and data in %s; any process that exits is started again", dir)
	c.logf("go tool task failover, go tool task cluster:restart-app, go tool task cluster:stop (or Ctrl-C)")
	c.logf("trust the certificate: curl --cacert %s %s (docs/deploy.md: the browser)", cert, c.state.URL)
	c.logf("plain HTTP only redirects: %s", c.state.HTTP)
	c.logf("open %s", c.state.URL)
	<-ctx.Done()
	c.logf("stopping the cluster")
	stopped = true
	c.mu.Lock()
	c.state.Stopping = true
	c.mu.Unlock()
	if err := c.save(); err != nil {
		c.logf("cluster: %v", err)
	}
	return nil
}

// lockDir lets one cluster at a time run from dir (they would share its Redis
// files); a start waits for one still stopping after task returned.
func lockDir(dir string, out io.Writer) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "cluster.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	said := false
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		// No cluster.json: the other one is starting, or has just
		// removed it on its way out; either way it ends soon or runs.
		if s, err := readState(dir); err == nil && !s.Stopping {
			f.Close()
			return nil, fmt.Errorf("a cluster already runs from %s (pid %d): stop it with go tool task cluster:stop, or give this one another -dir", dir, s.PID)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("the cluster that ran from %s did not stop within a minute", dir)
		}
		if !said {
			fmt.Fprintf(out, "waiting for the cluster that ran from %s to stop\n", dir)
			said = true
		}
	}
}

// stopCluster sends the running cluster SIGTERM and waits until it is gone.
func stopCluster(dir string, out io.Writer) error {
	s, err := readState(dir)
	if err != nil {
		return err
	}
	if err := syscall.Kill(s.PID, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop the cluster (pid %d): %w", s.PID, err)
	}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(stateFile(dir)); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintln(out, "the cluster stopped; its data stays in", dir)
			return nil
		}
	}
	return fmt.Errorf("the cluster (pid %d) did not stop within 60 s", s.PID)
}

// Command cluster is `go tool task cluster`: sessionlab as an operator would
// run it, on loopback. nginx terminates TLS and HTTP/2 and sends requests
// round-robin to three app instances (no sticky sessions); Redis is a master,
// a replica and three sentinels, with append-only files under -dir. Ctrl-C
// stops everything it started, and only that.
//
// Two subcommands act on a running cluster: `failover` (SENTINEL FAILOVER)
// and `restart-app [name]` (the instance stops gracefully and is started
// again).
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
)

// masterName is the name the sentinels know the master by.
const masterName = "mymaster"

//go:embed nginx.conf
var nginxConf string

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	cmd := "up"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("cluster "+cmd, flag.ContinueOnError)
	dir := fs.String("dir", ".data/cluster", "where configuration, certificates, Redis data and logs live")
	app := fs.String("app", ".task/sessionlab", "the sessionlab binary (up)")
	freePorts := fs.Bool("free-ports", false, "pick free ports instead of the fixed ones (up; for tests)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	switch cmd {
	case "up":
		// Arguments after the flags go to every app instance.
		return up(abs, *app, *freePorts, fs.Args(), out)
	case "failover":
		return failover(abs, out)
	case "restart-app":
		return restartApp(abs, cmp.Or(fs.Arg(0), "app1"), out)
	}
	return fmt.Errorf("unknown command %q (up, failover, restart-app)", cmd)
}

// State is what a running cluster writes to <dir>/cluster.json, for the
// subcommands and tests.
type State struct {
	URL       string         // https://localhost:port/
	Cert      string         // the certificate nginx presents (self-signed)
	Redis     []string       // the master at the first start, then the replica
	Sentinels []string       // host:port of each sentinel
	Apps      map[string]App // by instance name
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
	procs []*proc // in start order; stopped in reverse
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

// ports: nginx, three apps, Redis master and replica, three sentinels.
func ports(free bool) ([]int, error) {
	fixed := []int{8443, 8091, 8092, 8093, 6385, 6386, 26385, 26386, 26387}
	if !free {
		// A process already there would answer the readiness checks for
		// the one that failed to start.
		for _, p := range fixed {
			l, err := net.Listen("tcp", addr(p))
			if err != nil {
				return nil, fmt.Errorf("port %d is in use; the cluster needs %v free", p, fixed)
			}
			l.Close()
		}
		return fixed, nil
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]int, len(fixed))
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out, nil
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func up(dir, appBin string, free bool, appArgs []string, out io.Writer) error {
	for _, b := range []string{"nginx", "redis-server", "redis-cli"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s is not installed (go tool task cluster installs it with apt-get)", b)
		}
	}
	if _, err := os.Stat(appBin); err != nil {
		return fmt.Errorf("the app binary: %w (go tool task cluster builds it)", err)
	}
	appBin, _ = filepath.Abs(appBin)
	p, err := ports(free)
	if err != nil {
		return err
	}
	for _, d := range []string{"logs", "nginx-tmp", "tls"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	cert, key, err := localhostCert(filepath.Join(dir, "tls"))
	if err != nil {
		return err
	}
	c := &cluster{dir: dir, out: out, state: State{
		URL:       fmt.Sprintf("https://localhost:%d/", p[0]),
		Cert:      cert,
		Redis:     []string{addr(p[4]), addr(p[5])},
		Sentinels: []string{addr(p[6]), addr(p[7]), addr(p[8])},
		Apps:      map[string]App{},
	}}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer c.stopAll()
	defer os.Remove(stateFile(dir))

	if err := c.startRedis(p[4], p[5], p[6:9]); err != nil {
		return err
	}
	var apps sync.WaitGroup
	defer apps.Wait()
	defer stop() // the supervisors end with ctx, also when the start fails
	appAddrs := []string{addr(p[1]), addr(p[2]), addr(p[3])}
	for i, a := range appAddrs {
		ready := make(chan error, 1)
		apps.Go(func() { c.superviseApp(ctx, fmt.Sprintf("app%d", i+1), a, appBin, appArgs, ready) })
		if err := <-ready; err != nil {
			return err
		}
	}
	if err := c.startNginx(addr(p[0]), cert, key, appAddrs); err != nil {
		return err
	}
	if err := c.save(); err != nil {
		return err
	}
	fmt.Fprintf(out, "sessionlab cluster: nginx (TLS, HTTP/2) round-robin over app1..app3, Redis %s and %s, sentinels %s\n",
		c.state.Redis[0], c.state.Redis[1], strings.Join(c.state.Sentinels, " "))
	fmt.Fprintf(out, "the instances ask the sentinels for the master: -redis '%s'\n", c.redisURL())
	fmt.Fprintf(out, "logs and data in %s; go tool task failover, go tool task cluster:restart-app; Ctrl-C stops everything\n", dir)
	fmt.Fprintf(out, "open %s (the certificate is self-signed: accept it once)\n", c.state.URL)
	<-ctx.Done()
	fmt.Fprintln(out, "stopping the cluster")
	return nil
}

// proc is one child process; its output goes to <dir>/logs/<name>.log.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func (c *cluster) start(name, bin string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(filepath.Join(c.dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = ownGroup() // Ctrl-C reaches this program only; it stops the rest in order
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	return p, nil
}

// stop asks gracefully, then kills after 10 s.
func (p *proc) stop(sig os.Signal) {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (c *cluster) keep(p *proc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.procs = append(c.procs, p)
}

func (c *cluster) stopAll() {
	c.mu.Lock()
	procs := c.procs
	c.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		sig := os.Signal(syscall.SIGTERM)
		if procs[i].name == "nginx" {
			sig = syscall.SIGQUIT // graceful for nginx
		}
		procs[i].stop(sig)
	}
}

// waitFor polls until ok or 20 s pass.
func waitFor(what string, p *proc, ok func() bool) error {
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited at start; see its log", what)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not start within 20 s; see its log", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// redisCLI runs redis-cli against addr and returns its trimmed output.
func redisCLI(addr string, args ...string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// writeOnce writes a config file only if it is missing: Redis and Sentinel
// rewrite their own files on a failover, and the next start must keep that.
func writeOnce(path, content string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return os.WriteFile(path, []byte(content), 0o644)
}

func (c *cluster) startRedis(master, replica int, sentinels []int) error {
	for _, port := range []int{master, replica} {
		d := filepath.Join(c.dir, "redis-"+strconv.Itoa(port))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		// min-replicas-to-write: a master whose replica has left (as after
		// a failover, until the sentinels demote it) refuses writes, which
		// the app answers 503, instead of acknowledging writes that the
		// resync from the new master would drop (see docs/deploy.md).
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nappendonly yes\nsave \"\"\n"+
			"min-replicas-to-write 1\nmin-replicas-max-lag 10\n", port, d)
		if port == replica {
			conf += fmt.Sprintf("replicaof 127.0.0.1 %d\n", master)
		}
		if err := writeOnce(filepath.Join(d, "redis.conf"), conf); err != nil {
			return err
		}
		p, err := c.start("redis-"+strconv.Itoa(port), "redis-server", filepath.Join(d, "redis.conf"))
		if err != nil {
			return err
		}
		c.keep(p)
		if err := waitFor("redis-server on "+addr(port), p, func() bool {
			out, err := redisCLI(addr(port), "ping")
			if port == replica { // in sync, or the master refuses writes
				out, err = redisCLI(addr(port), "info", "replication")
				return err == nil && strings.Contains(out, "master_link_status:up")
			}
			return err == nil && out == "PONG"
		}); err != nil {
			return err
		}
	}
	for _, port := range sentinels {
		d := filepath.Join(c.dir, "sentinel-"+strconv.Itoa(port))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		// Quick to notice a dead master (2 s), as a demo wants; production
		// keeps the default 30 s.
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[3]s 2000\n"+
			"sentinel failover-timeout %[3]s 5000\n", port, d, masterName, master)
		if err := writeOnce(filepath.Join(d, "sentinel.conf"), conf); err != nil {
			return err
		}
		p, err := c.start("sentinel-"+strconv.Itoa(port), "redis-server", filepath.Join(d, "sentinel.conf"), "--sentinel")
		if err != nil {
			return err
		}
		c.keep(p)
		if err := waitFor("sentinel on "+addr(port), p, func() bool {
			out, err := redisCLI(addr(port), "sentinel", "get-master-addr-by-name", masterName)
			return err == nil && strings.HasPrefix(out, "127.0.0.1")
		}); err != nil {
			return err
		}
	}
	return nil
}

// redisURL is what every instance is given: the sentinels, which tell the
// app who the master is now and after a failover.
func (c *cluster) redisURL() string {
	u := "redis://" + c.state.Sentinels[0] + "/0?master_set=" + masterName
	for _, s := range c.state.Sentinels[1:] {
		u += "&addr=" + s
	}
	return u
}

// superviseApp runs one instance and starts it again whenever it exits,
// until ctx ends: `restart-app` only has to stop it.
func (c *cluster) superviseApp(ctx context.Context, name, addr, bin string, extra []string, ready chan<- error) {
	first := true
	for {
		p, err := c.start(name, bin, append([]string{"-addr", addr, "-instance", name, "-redis", c.redisURL(),
			"-cookie-secure", "-trusted-proxies", "127.0.0.1/32,::1/128"}, extra...)...)
		if err == nil {
			err = waitFor(name, p, func() bool { return healthy(addr) })
		}
		if first {
			ready <- err
			first = false
		}
		if err != nil {
			if p != nil {
				p.stop(syscall.SIGTERM)
			}
			return
		}
		c.mu.Lock()
		c.state.Apps[name] = App{Addr: addr, PID: p.cmd.Process.Pid}
		c.mu.Unlock()
		if err := c.save(); err != nil {
			fmt.Fprintln(c.out, "cluster:", err)
		}
		select {
		case <-ctx.Done():
			p.stop(syscall.SIGTERM)
			return
		case <-p.done:
			fmt.Fprintf(c.out, "%s stopped; starting it again\n", name)
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func healthy(addr string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (c *cluster) startNginx(listen, cert, key string, apps []string) error {
	var b strings.Builder
	err := template.Must(template.New("nginx").Parse(nginxConf)).Execute(&b, map[string]any{
		"Dir": c.dir, "Listen": listen, "Cert": cert, "Key": key, "Apps": apps,
	})
	if err != nil {
		return err
	}
	conf := filepath.Join(c.dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return err
	}
	p, err := c.start("nginx", "nginx", "-p", c.dir, "-c", conf, "-e", filepath.Join(c.dir, "logs", "nginx-error.log"), "-g", "daemon off;")
	if err != nil {
		return err
	}
	c.keep(p)
	// Ready when it answers a TLS handshake with this certificate: proof
	// that it is this nginx, with its workers up.
	pem, err := os.ReadFile(cert)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return waitFor("nginx on "+listen, p, func() bool {
		d := &net.Dialer{Timeout: time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", listen, &tls.Config{RootCAs: roots, ServerName: "localhost"})
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

// failover asks a sentinel to fail the master over and waits until the
// sentinels name the new one.
func failover(dir string, out io.Writer) error {
	s, err := readState(dir)
	if err != nil {
		return err
	}
	sentinel := s.Sentinels[0]
	before, err := redisCLI(sentinel, "sentinel", "get-master-addr-by-name", masterName)
	if err != nil {
		return fmt.Errorf("ask sentinel %s: %v: %s", sentinel, err, before)
	}
	if res, err := redisCLI(sentinel, "sentinel", "failover", masterName); err != nil || res != "OK" {
		return fmt.Errorf("SENTINEL FAILOVER: %v %s", err, res)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		now, err := redisCLI(sentinel, "sentinel", "get-master-addr-by-name", masterName)
		if err == nil && now != before {
			fmt.Fprintf(out, "failover: the master was %s, now %s\n", strings.ReplaceAll(before, "\n", ":"), strings.ReplaceAll(now, "\n", ":"))
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("failover: the sentinels did not name a new master within 30 s")
}

// restartApp stops one instance gracefully; the cluster starts it again.
func restartApp(dir, name string, out io.Writer) error {
	s, err := readState(dir)
	if err != nil {
		return err
	}
	a, ok := s.Apps[name]
	if !ok {
		return fmt.Errorf("no instance %q (app1, app2, app3)", name)
	}
	if err := syscall.Kill(a.PID, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop %s (pid %d): %w", name, a.PID, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if s, err := readState(dir); err == nil && s.Apps[name].PID != a.PID && healthy(a.Addr) {
			fmt.Fprintf(out, "%s restarted (pid %d, was %d)\n", name, s.Apps[name].PID, a.PID)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come back within 30 s; see %s", name, filepath.Join(dir, "logs", name+".log"))
}

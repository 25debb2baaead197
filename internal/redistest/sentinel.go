package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MasterSet is the name the topology's sentinels monitor the master by.
const MasterSet = "mymaster"

// Topology is a Redis Sentinel deployment owned by a test: a master, a replica
// and three sentinels (quorum 2), with down-after 1 s so failovers are quick.
type Topology struct {
	tb        testing.TB
	Nodes     []*Server // the master and the replica, in start order (roles change on failover)
	Sentinels []*Sentinel
}

// Sentinel is one `redis-server sentinel.conf --sentinel` process.
type Sentinel struct {
	tb       testing.TB
	dir      string
	port     int
	password string
	cmd      *exec.Cmd
}

// StartTopology starts a Topology and returns once a failover could start at
// once; everything stops when the test ends.
func StartTopology(tb testing.TB) *Topology {
	tb.Helper()
	return StartTopologyWith(tb, TopologyOptions{})
}

// TopologyOptions change how StartTopology sets the topology up.
type TopologyOptions struct {
	// SentinelPassword, if set, is the sentinels' requirepass (and what they
	// give each other): clients must AUTH to ask them anything.
	SentinelPassword string
}

// StartTopologyWith is StartTopology with options.
func StartTopologyWith(tb testing.TB, o TopologyOptions) *Topology {
	tb.Helper()
	master := Start(tb)
	replica := Start(tb, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	t := &Topology{tb: tb, Nodes: []*Server{master, replica}}
	for range 3 {
		t.Sentinels = append(t.Sentinels, startSentinel(tb, master.port, o.SentinelPassword))
	}
	t.waitFor("the sentinels to know each other and the replica", 20*time.Second, func() error {
		for _, s := range t.Sentinels {
			others, err := s.Do("SENTINEL", "SENTINELS", MasterSet)
			if err != nil {
				return err
			}
			if n := countLines(others, "name"); n < 2 {
				return fmt.Errorf("sentinel %s knows %d other sentinels", s.Addr(), n)
			}
			replicas, err := s.Do("SENTINEL", "REPLICAS", MasterSet)
			if err != nil {
				return err
			}
			if !strings.Contains(replicas, "master-link-status\nok") {
				return fmt.Errorf("sentinel %s sees no replica in sync", s.Addr())
			}
		}
		return nil
	})
	return t
}

// URL is the app's Redis URL for the topology: rueidis's Sentinel form,
// database 0, with every sentinel.
func (t *Topology) URL() string {
	u := "redis://" + t.Sentinels[0].Addr() + "/0?master_set=" + MasterSet
	for _, s := range t.Sentinels[1:] {
		u += "&addr=" + s.Addr()
	}
	return u
}

// MasterAddr is the master's address as the first sentinel that answers
// reports it.
func (t *Topology) MasterAddr() string {
	t.tb.Helper()
	var last error
	for _, s := range t.Sentinels {
		addr, err := s.masterAddr()
		if err == nil {
			return addr
		}
		last = err
	}
	t.tb.Fatalf("redistest: no sentinel names the master: %v", last)
	return ""
}

// Master is the node the sentinels call master.
func (t *Topology) Master() *Server {
	t.tb.Helper()
	addr := t.MasterAddr()
	for _, n := range t.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	t.tb.Fatalf("redistest: the sentinels' master %s is none of the nodes", addr)
	return nil
}

// Failover runs SENTINEL FAILOVER and returns once every sentinel names the
// new master; the old stays a master for about ten seconds (WaitReplica).
func (t *Topology) Failover() (from, to string) {
	t.tb.Helper()
	from = t.MasterAddr()
	// A replica that has just (re)synced may not be eligible yet.
	t.waitFor("a sentinel to accept SENTINEL FAILOVER", 10*time.Second, func() error {
		_, err := t.Sentinels[0].Do("SENTINEL", "FAILOVER", MasterSet)
		return err
	})
	return from, t.waitNewMaster(from)
}

// KillMaster kills the master with SIGKILL and returns once every sentinel
// names the promoted replica; the killed node stays down until Rejoin.
func (t *Topology) KillMaster() (from, to string) {
	t.tb.Helper()
	m := t.Master()
	from = m.Addr()
	m.Kill()
	return from, t.waitNewMaster(from)
}

// waitNewMaster waits until every sentinel names a master other than old, and
// that node says it is a master.
func (t *Topology) waitNewMaster(old string) string {
	t.tb.Helper()
	var now string
	t.waitFor("the sentinels to agree on a new master", 30*time.Second, func() error {
		now = ""
		for _, s := range t.Sentinels {
			addr, err := s.masterAddr()
			if err != nil {
				return err
			}
			if addr == old || (now != "" && addr != now) {
				return fmt.Errorf("sentinel %s names %s", s.Addr(), addr)
			}
			now = addr
		}
		role, err := do(now, "", "ROLE")
		if err != nil {
			return err
		}
		if !strings.HasPrefix(role, "master\n") {
			return fmt.Errorf("%s is %q", now, role)
		}
		return nil
	})
	return now
}

// Rejoin starts a killed node again as a replica of the current master, as an
// operator would (alone it would be a master of its old data for ~10 s).
func (t *Topology) Rejoin(node *Server) {
	t.tb.Helper()
	host, port, _ := net.SplitHostPort(t.MasterAddr())
	args := make([]string, 0, len(node.args)+3)
	for i := 0; i < len(node.args); i++ {
		if node.args[i] == "--replicaof" {
			i += 2
			continue
		}
		args = append(args, node.args[i])
	}
	node.args = append(args, "--replicaof", host, port)
	node.Start()
	// On a loaded machine the sentinels may fail back over to node (its new
	// master missed down-after's 1 s): the pair is whole again either way.
	t.waitFor(node.Addr()+" to rejoin, as a replica in sync or as the master of one", 30*time.Second, func() error {
		info, err := node.Do("INFO", "replication")
		if err != nil {
			return err
		}
		if strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") ||
			strings.Contains(info, "role:master") && strings.Contains(info, "state=online") {
			return nil
		}
		return fmt.Errorf("%s", strings.Join(strings.Fields(info), " "))
	})
}

// WaitReplica waits until node (a restarted old master, say) is a replica in
// sync with the current master.
func (t *Topology) WaitReplica(node *Server) {
	t.tb.Helper()
	t.waitFor(node.Addr()+" to be a replica in sync", 30*time.Second, func() error {
		info, err := node.Do("INFO", "replication")
		if err != nil {
			return err
		}
		if !strings.Contains(info, "role:slave") || !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("%s", strings.Join(strings.Fields(info), " "))
		}
		return nil
	})
}

func (t *Topology) waitFor(what string, timeout time.Duration, ok func() error) {
	t.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := ok()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.tb.Fatalf("redistest: waited %v for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL, as a crash or the OOM killer would;
// Start brings it back on the same port and dir.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
	s.paused = false
}

// startSentinel runs a sentinel that monitors the master on masterPort, in its
// own dir, as Sentinel rewrites its config file.
func startSentinel(tb testing.TB, masterPort int, password string) *Sentinel {
	tb.Helper()
	s := &Sentinel{tb: tb, dir: tb.TempDir(), password: password}
	var lastErr error
	for range 3 {
		s.port = freePort(tb)
		conf := filepath.Join(s.dir, "sentinel.conf")
		text := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
logfile sentinel.log
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %[3]s 1000
sentinel failover-timeout %[3]s 5000
sentinel parallel-syncs %[3]s 1
`, s.port, s.dir, MasterSet, masterPort)
		if password != "" {
			text += fmt.Sprintf("requirepass %s\nsentinel sentinel-pass %s\n", password, password)
		}
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			tb.Fatalf("redistest: write sentinel.conf: %v", err)
		}
		cmd := exec.Command("redis-server", conf, "--sentinel")
		cmd.Dir = s.dir
		cmd.SysProcAttr = dieWithParent()
		if err := cmd.Start(); err != nil {
			tb.Fatalf("redistest: start sentinel: %v", err)
		}
		if lastErr = s.waitReady(5 * time.Second); lastErr == nil {
			s.cmd = cmd
			tb.Cleanup(s.Stop)
			return s
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "sentinel.log"))
	tb.Fatalf("redistest: sentinel did not answer: %v\n%s", lastErr, log)
	return nil
}

// Addr is host:port of the sentinel.
func (s *Sentinel) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Do sends one command to the sentinel (see Server.Do).
func (s *Sentinel) Do(args ...string) (string, error) { return do(s.Addr(), s.password, args...) }

// waitReady waits until the sentinel answers PING.
func (s *Sentinel) waitReady(timeout time.Duration) error {
	var err error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err = s.Do("PING"); err == nil {
			return nil
		}
	}
	return err
}

// Log is the sentinel's log so far: its view of failovers (+sdown,
// +switch-master, +convert-to-slave), for a test to report.
func (s *Sentinel) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "sentinel.log"))
	return string(b)
}

// Stop ends the sentinel.
func (s *Sentinel) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

func (s *Sentinel) masterAddr() (string, error) {
	reply, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MasterSet)
	if err != nil {
		return "", err
	}
	host, port, ok := strings.Cut(reply, "\n")
	if !ok {
		return "", fmt.Errorf("sentinel %s: no master: %q", s.Addr(), reply)
	}
	return net.JoinHostPort(host, port), nil
}

// do sends one command over a fresh connection to addr, after AUTH if
// password is set; see Server.Do.
func do(addr, password string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	send := func(args ...string) (string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := conn.Write([]byte(b.String())); err != nil {
			return "", err
		}
		return readReply(r)
	}
	if password != "" {
		if _, err := send("AUTH", password); err != nil {
			return "", err
		}
	}
	return send(args...)
}

// countLines counts the lines of reply that are exactly word: in a reply of
// field/value pairs, how many records have that field.
func countLines(reply, word string) int {
	n := 0
	for line := range strings.Lines(reply) {
		if strings.TrimRight(line, "\n") == word {
			n++
		}
	}
	return n
}

// Dead reports whether the server was stopped or killed and not started again.
func (s *Server) Dead() bool { return s.cmd == nil }

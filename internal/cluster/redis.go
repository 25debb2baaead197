package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sentinelDebug shortens Sentinel's INFO and hello periods: with the defaults
// a new master refused writes for 16 s after a planned failover, with these
// about 2 s (docs/reliability.md, "Healing").
var sentinelDebug = []string{"info-period", "500", "publish-period", "250"}

// redisCLI runs redis-cli against addr and returns its trimmed output; a
// Redis that does not answer within 3 s is an error.
func redisCLI(addr string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// redisServices writes the Redis and sentinel configurations afresh at every
// start, with the master the sentinels last agreed on (a crashed master comes
// back saying it is one), and returns their services, master first.
func (c *cluster) redisServices(p Ports) (redis, sentinels []*service, err error) {
	c.moveOldDirs()
	master := c.lastMaster()
	masterPort := p.Redis[master]
	for i, port := range p.Redis {
		name := fmt.Sprintf("redis-%d", i+1)
		d := filepath.Join(c.dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
		// min-replicas-to-write: a master without its replica refuses writes
		// rather than acknowledge what a resync would drop; diskless delay 0:
		// there are no other replicas to wait for (docs/reliability.md).
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nappendonly yes\nsave \"\"\n"+
			"min-replicas-to-write 1\nmin-replicas-max-lag 10\nrepl-diskless-sync-delay 0\n", port, d)
		if i != master {
			conf += fmt.Sprintf("replicaof 127.0.0.1 %d\n", masterPort)
		}
		confFile := filepath.Join(d, "redis.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			return nil, nil, err
		}
		a := addr(port)
		s := &service{
			name: name,
			start: func(again bool) (*proc, error) {
				args := []string{confFile}
				if again {
					args = append(args, c.rejoinArgs(a)...)
				}
				return c.startProc(name, "redis-server", args...)
			},
			ready: func() bool { out, err := redisCLI(a, "ping"); return err == nil && out == "PONG" },
			sig:   syscall.SIGTERM,
			quit:  make(chan struct{}),
			done:  make(chan struct{}),
		}
		if i == master {
			redis = slices.Insert(redis, 0, s)
		} else {
			redis = append(redis, s)
		}
	}
	if err := os.WriteFile(filepath.Join(c.dir, "redis-ports"), []byte(joinPorts(p.Redis)+"\n"), 0o644); err != nil {
		return nil, nil, err
	}
	for i, port := range p.Sentinels {
		name := fmt.Sprintf("sentinel-%d", i+1)
		d := filepath.Join(c.dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
		// Quick to notice a dead master (2 s), as a demo wants; production
		// keeps the default 30 s.
		conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %d 2\n"+
			"sentinel down-after-milliseconds %[3]s 2000\n"+
			"sentinel failover-timeout %[3]s 5000\n", port, d, masterName, masterPort)
		confFile := filepath.Join(d, "sentinel.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			return nil, nil, err
		}
		a := addr(port)
		sentinels = append(sentinels, &service{
			name:  name,
			start: func(bool) (*proc, error) { return c.startProc(name, "redis-server", confFile, "--sentinel") },
			ready: func() bool {
				out, err := redisCLI(a, "sentinel", "get-master-addr-by-name", masterName)
				return err == nil && strings.HasPrefix(out, "127.0.0.1")
			},
			after: func() error {
				if out, err := redisCLI(a, append([]string{"sentinel", "debug"}, sentinelDebug...)...); err != nil || out != "OK" {
					return fmt.Errorf("%s: SENTINEL DEBUG: %v %s", name, err, out)
				}
				return nil
			},
			sig:  syscall.SIGTERM,
			quit: make(chan struct{}),
			done: make(chan struct{}),
		})
	}
	return redis, sentinels, nil
}

// rejoinArgs restarts a Redis server as a replica of the master the sentinels
// name now. A crashed master first waits for the failover: back at once, it
// would be master again without its last acknowledged writes, and the replica
// would resync from it (docs/reliability.md).
func (c *cluster) rejoinArgs(self string) []string {
	for deadline := time.Now().Add(rejoinWait); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, s := range c.state.Sentinels {
			out, err := redisCLI(s, "sentinel", "get-master-addr-by-name", masterName)
			if f := strings.Fields(out); err == nil && len(f) == 2 {
				if master := net.JoinHostPort(f[0], f[1]); master != self {
					return []string{"--replicaof", f[0], f[1]}
				}
				break // the sentinels still name self
			}
		}
	}
	return nil // no failover came: back as the master, with its data
}

// rejoinWait bounds how long a crashed master waits for a failover.
const rejoinWait = 10 * time.Second

// lastMaster is the index (in -redis-ports) of the master the sentinels
// last agreed on, from the files they rewrote; 0 at the first start.
func (c *cluster) lastMaster() int {
	prev := defaultPorts.Redis
	if b, err := os.ReadFile(filepath.Join(c.dir, "redis-ports")); err == nil {
		prev = nil
		for f := range strings.SplitSeq(strings.TrimSpace(string(b)), ",") {
			n, _ := strconv.Atoi(f)
			prev = append(prev, n)
		}
	}
	best, bestEpoch := 0, -1
	for i := range 3 {
		port, epoch, err := sentinelView(filepath.Join(c.dir, fmt.Sprintf("sentinel-%d", i+1), "sentinel.conf"))
		if err != nil {
			continue
		}
		if idx := slices.Index(prev, port); idx >= 0 && epoch > bestEpoch {
			best, bestEpoch = idx, epoch
		}
	}
	return best
}

// sentinelView reads the master's port and the config epoch from a
// sentinel's file.
func sentinelView(path string) (port, epoch int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	port = -1
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		switch {
		case len(w) >= 5 && w[0] == "sentinel" && w[1] == "monitor" && w[2] == masterName:
			port, _ = strconv.Atoi(w[4])
		case len(w) == 4 && w[0] == "sentinel" && w[1] == "config-epoch" && w[2] == masterName:
			epoch, _ = strconv.Atoi(w[3])
		}
	}
	if port < 0 {
		return 0, 0, errors.New("no monitor line")
	}
	return port, epoch, sc.Err()
}

// moveOldDirs renames the data directories of earlier versions, named by
// their fixed ports, to the names by position used now.
func (c *cluster) moveOldDirs() {
	old := map[string]string{"redis-6385": "redis-1", "redis-6386": "redis-2",
		"sentinel-26385": "sentinel-1", "sentinel-26386": "sentinel-2", "sentinel-26387": "sentinel-3"}
	for from, to := range old {
		if _, err := os.Stat(filepath.Join(c.dir, to)); err == nil {
			continue
		}
		_ = os.Rename(filepath.Join(c.dir, from), filepath.Join(c.dir, to))
	}
}

// waitReplicaInSync waits (20 s at most) until the replica has synced from
// the master: until then the master refuses writes (min-replicas-to-write).
func (c *cluster) waitReplicaInSync() error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, a := range c.state.Redis {
			if out, err := redisCLI(a, "info", "replication"); err == nil && strings.Contains(out, "master_link_status:up") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the replica did not sync from the master within 20 s; see logs/redis-*.log")
		}
		time.Sleep(100 * time.Millisecond)
	}
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

// failover asks a sentinel to fail the master over, waits until the new one
// takes writes again, and says how long each step took.
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
	start := time.Now()
	if res, err := redisCLI(sentinel, "sentinel", "failover", masterName); err != nil || res != "OK" {
		return fmt.Errorf("SENTINEL FAILOVER: %v %s", err, res)
	}
	var now string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if now, err = redisCLI(sentinel, "sentinel", "get-master-addr-by-name", masterName); err == nil && now != before {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("failover: the sentinels did not name a new master within 30 s")
		}
	}
	switched := time.Since(start)
	master := strings.ReplaceAll(now, "\n", ":")
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if info, err := redisCLI(master, "info", "replication"); err == nil && strings.Contains(info, "min_slaves_good_slaves:1") {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("failover: the new master %s has no replica in sync 30 s later, so refuses writes", master)
		}
	}
	fmt.Fprintf(out, "failover: the master was %s, now %s (named after %.1f s; takes writes, with its replica in sync, after %.1f s)\n",
		strings.ReplaceAll(before, "\n", ":"), master, switched.Seconds(), time.Since(start).Seconds())
	return nil
}

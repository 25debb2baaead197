package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/instances"
)

// redisProbe reads a Redis the way an operator would: INFO, DBSIZE,
// MEMORY USAGE, MONITOR. It never runs anything that scans keys.
type redisProbe struct {
	addr string
	rdb  rueidis.Client
}

func newProbe(tb testing.TB, url string) *redisProbe {
	tb.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		tb.Fatalf("redis url %q: %v", url, err)
	}
	opt.DisableCache = true
	rdb, err := rueidis.NewClient(opt)
	if err != nil {
		tb.Fatalf("connect %s: %v", url, err)
	}
	tb.Cleanup(rdb.Close)
	return &redisProbe{addr: opt.InitAddress[0], rdb: rdb}
}

func (p *redisProbe) do(args ...string) rueidis.RedisResult {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.rdb.Do(ctx, p.rdb.B().Arbitrary(args...).Build())
}

func (p *redisProbe) dbsize() int64 {
	n, _ := p.do("DBSIZE").AsInt64()
	return n
}

func (p *redisProbe) info(section string) map[string]string {
	s, _ := p.do("INFO", section).ToString()
	m := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

func (p *redisProbe) pid() int {
	n, _ := strconv.Atoi(p.info("server")["process_id"])
	return n
}

func (p *redisProbe) usedMemory() int64 {
	n, _ := strconv.ParseInt(p.info("memory")["used_memory"], 10, 64)
	return n
}

// memoryUsage is MEMORY USAGE of one key (SAMPLES 0: exact for a string).
func (p *redisProbe) memoryUsage(key string) (int64, error) {
	return p.do("MEMORY", "USAGE", key, "SAMPLES", "0").AsInt64()
}

// overhead are commands a client sends for itself, not for a request.
var overhead = map[string]bool{"info": true, "ping": true, "hello": true, "client": true, "select": true,
	"auth": true, "config": true, "dbsize": true, "memory": true, "monitor": true, "echo": true, "command": true,
	"script": true, "role": true}

// commandStats is calls per command (INFO commandstats), without overhead.
func (p *redisProbe) commandStats() map[string]int64 {
	m := map[string]int64{}
	for k, v := range p.info("commandstats") {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		base, _, _ := strings.Cut(name, "|")
		if overhead[base] {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
		n, _ := strconv.ParseInt(calls, 10, 64)
		m[name] += n
	}
	return m
}

// perRequest turns two commandstats snapshots into "GET 1.00 + EVALSHA 1.00"
// and the total per request. Commands run inside a Lua script are counted
// by Redis too (so a script that does GET and SET shows as 3 commands in
// 1 round trip); roundTrips measures trips directly.
func perRequest(before, after map[string]int64, requests int64) (string, float64) {
	if requests <= 0 {
		return "-", 0
	}
	type kv struct {
		k string
		v float64
	}
	var parts []kv
	var total float64
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			x := float64(d) / float64(requests)
			total += x
			parts = append(parts, kv{k, x})
		}
	}
	sort.Slice(parts, func(i, j int) bool {
		return parts[i].v > parts[j].v || parts[i].v == parts[j].v && parts[i].k < parts[j].k
	})
	var b strings.Builder
	for i, p := range parts {
		if p.v < 0.005 {
			continue
		}
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s %.2f", strings.ToUpper(p.k), p.v)
	}
	if b.Len() == 0 {
		return "none", 0
	}
	return b.String(), total
}

// monitor records the commands clients send to a Redis, to count round
// trips exactly: a command issued from a Lua script is not a trip, and a
// MULTI ... EXEC block is one.
type monitor struct {
	conn  net.Conn
	lines chan string
}

func startMonitor(tb testing.TB, addr string) *monitor {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		tb.Fatalf("monitor %s: %v", addr, err)
	}
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		tb.Fatalf("monitor: %v", err)
	}
	m := &monitor{conn: conn, lines: make(chan string, 1<<16)}
	r := bufio.NewReader(conn)
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
		tb.Fatalf("monitor: %q %v", l, err)
	}
	go func() {
		defer close(m.lines)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			m.lines <- strings.TrimRight(l, "\r\n")
		}
	}()
	return m
}

// stop ends monitoring once a marker sent after the requests shows up, and
// returns the round trips seen (the marker excluded).
func (m *monitor) stop(p *redisProbe) int {
	marker := fmt.Sprintf("bench-marker-%d", time.Now().UnixNano())
	p.do("ECHO", marker)
	defer m.conn.Close()
	trips := 0
	inMulti := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-m.lines:
			if !ok {
				return trips
			}
			if strings.Contains(l, marker) {
				return trips
			}
			client, cmd, ok := monitored(l)
			switch {
			case !ok:
			case cmd == "multi":
				inMulti[client] = true
				trips++
			case inMulti[client]:
				if cmd == "exec" || cmd == "discard" {
					inMulti[client] = false
				}
			default:
				trips++
			}
		case <-timeout:
			return trips
		}
	}
}

// monitored reads one MONITOR line: the client that sent the command and
// the command, lower case. ok is false for what is no request's trip:
// a command a Lua script ran, a client's own overhead (overhead), and the
// app's instance heartbeat (the roster script on instances.Key, every
// instances.Every), which fell among the 20 requests of a sample now and
// then and made a route's trips 1.05.
func monitored(line string) (client, cmd string, ok bool) {
	// +1700000000.123456 [0 127.0.0.1:5555] "EVALSHA" "<sha>" "1" "instances" ...
	open, end := strings.IndexByte(line, '['), strings.IndexByte(line, ']')
	if open < 0 || end < open {
		return "", "", false
	}
	src := strings.Fields(line[open+1 : end])
	args := monitorArgs(line[end+1:])
	if len(src) < 2 || src[1] == "lua" || len(args) == 0 {
		return "", "", false
	}
	cmd = strings.ToLower(args[0])
	if overhead[cmd] {
		return "", "", false
	}
	if (cmd == "evalsha" || cmd == "eval") && len(args) > 3 && args[2] == "1" && args[3] == instances.Key {
		return "", "", false
	}
	return src[1], cmd, true
}

// monitorArgs are a MONITOR line's arguments, each quoted and escaped as Go
// quotes a string (Redis's sdscatrepr), unquoted.
func monitorArgs(s string) []string {
	var args []string
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			return args
		}
		j := i + 1
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(s) {
			return args
		}
		a, err := strconv.Unquote(s[i : j+1])
		if err != nil {
			return args
		}
		args = append(args, a)
		s = s[j+1:]
	}
}

// fillSessions stores n other sessions (sess:fill:<i>, ~200 B of JSON with
// a 1 h TTL), pipelined in batches: a million take a few seconds.
func (p *redisProbe) fillSessions(from, to int) error {
	const batch = 5000
	value := `{"deadline":"2026-11-28T10:01:12.552Z","values":{"seen":"2026-11-27T10:01:12.552Z","user":{"username":"someone-else","role":"student"},"views":42}}`
	ctx := context.Background()
	cmds := make(rueidis.Commands, 0, batch)
	for i := from; i < to; {
		cmds = cmds[:0]
		for ; i < to && len(cmds) < batch; i++ {
			key := fmt.Sprintf("sess:fill-%038d", i) // 43 characters, like a real token
			cmds = append(cmds, p.rdb.B().Set().Key(key).Value(value).Ex(time.Hour).Build())
		}
		for _, r := range p.rdb.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return err
			}
		}
	}
	return nil
}

// A route's trips are its requests' commands: not a script's inner
// commands, a client's own, or the app's heartbeat that runs on a timer.
func TestMonitorCountsOnlyTheRequestsCommands(t *testing.T) {
	for _, c := range []struct {
		line, client, cmd string
	}{
		{`1796661352.872000 [0 127.0.0.1:50382] "GET" "sess:Zx9AbC"`, "127.0.0.1:50382", "get"},
		{`1796661352.872100 [0 127.0.0.1:50390] "EVALSHA" "4e1f" "3" "sess:Zx9AbC" "browsers:127.0.0.1" "1"`, "127.0.0.1:50390", "evalsha"},
		{`1796661352.872200 [0 127.0.0.1:50390] "MULTI"`, "127.0.0.1:50390", "multi"},
		{`1796661352.872300 [0 lua] "TIME"`, "", ""},
		{`1796661352.872400 [0 127.0.0.1:50388] "PING"`, "", ""},
		{`1796661352.872500 [0 127.0.0.1:50388] "ROLE"`, "", ""},
		{`1796661352.871000 [0 127.0.0.1:50382] "EVALSHA" "80516ea4" "1" "instances" "vm:8099" "6d3bc6" "15000"`, "", ""},
		{`1796661352.871000 [0 127.0.0.1:50382] "EVAL" "local k = KEYS[1] -- \"a\" \\" "1" "instances" "vm:8099" "6d3bc6" "15000"`, "", ""},
		// A request's script whose first key merely starts like the roster's.
		{`1796661352.871000 [0 127.0.0.1:50382] "EVALSHA" "80516ea4" "1" "instances:x"`, "127.0.0.1:50382", "evalsha"},
		{`garbage`, "", ""},
	} {
		client, cmd, ok := monitored(c.line)
		if ok != (c.cmd != "") || client != c.client || cmd != c.cmd {
			t.Errorf("monitored(%s) = %q, %q, %v; want %q, %q", c.line, client, cmd, ok, c.client, c.cmd)
		}
	}
}

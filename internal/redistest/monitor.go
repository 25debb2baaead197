package redistest

import (
	"bufio"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Monitor is a redis-cli MONITOR of a test's own, to hold what the app says
// it sent against what Redis printed.
type Monitor struct {
	s *Server
	r *bufio.Reader
	n int
}

// Line is one command MONITOR printed: from a Lua script ("[0 lua]") or a
// client, with its arguments as printed (quoted, escaped).
type Line struct {
	Lua  bool
	Args []string
}

func (l Line) String() string {
	s := strings.Join(l.Args, " ")
	if l.Lua {
		return "[lua] " + s
	}
	return s
}

// StartMonitor opens a MONITOR connection to s until the test ends.
func (s *Server) StartMonitor(t testing.TB) *Monitor {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte("MONITOR\r\n")); err != nil {
		t.Fatal(err)
	}
	m := &Monitor{s: s, r: bufio.NewReader(conn)}
	if line, err := m.r.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("MONITOR: %q, %v", line, err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	return m
}

var monitorLineRe = regexp.MustCompile(`^\+[0-9.]+ \[\d+ ([^\]]+)\] (.*)\r\n$`)

// Around runs do between two ECHO marks and returns what MONITOR printed
// between them, but the rueidis client's own upkeep: the PING it sends on an
// idle connection.
func (m *Monitor) Around(t testing.TB, do func()) []Line {
	t.Helper()
	m.n++
	mark := "monitor-mark-" + strconv.Itoa(m.n)
	m.s.MustDo("ECHO", mark+"-start")
	do()
	m.s.MustDo("ECHO", mark+"-end")
	var lines []Line
	started := false
	for {
		line, err := m.r.ReadString('\n')
		if err != nil {
			t.Fatalf("MONITOR: %v", err)
		}
		sm := monitorLineRe.FindStringSubmatch(line)
		if sm == nil {
			t.Fatalf("MONITOR printed %q", line)
		}
		switch args := SplitArgs(sm[2]); {
		case len(args) == 2 && args[0] == "ECHO" && args[1] == mark+"-start":
			started = true
		case len(args) == 2 && args[0] == "ECHO" && args[1] == mark+"-end":
			return lines
		case len(args) == 1 && args[0] == "PING":
		case started:
			lines = append(lines, Line{Lua: sm[1] == "lua", Args: args})
		}
	}
}

// SplitArgs splits MONITOR's quoted arguments ("GET" "sess:abc"), keeping
// each as printed; text without quotes splits at spaces.
func SplitArgs(s string) []string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, `"`) {
		return strings.Fields(s)
	}
	var args []string
	for len(s) > 0 {
		if s[0] != '"' {
			s = s[1:]
			continue
		}
		i := 1
		for i < len(s) && s[i] != '"' {
			if s[i] == '\\' {
				i++
			}
			i++
		}
		args = append(args, s[1:min(i, len(s))])
		s = s[min(i+1, len(s)):]
	}
	return args
}

// Package redistest starts a private redis-server for tests on a free port,
// so a test can stop, restart and break it without touching another Redis.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/rueidis"
)

// Server is one redis-server process owned by a test.
type Server struct {
	tb   testing.TB
	dir  string
	port int
	cmd  *exec.Cmd
	args []string
	// paused: the process is stopped with SIGSTOP (see Pause).
	paused bool
	// tlsPort is the TLS port (StartTLS), 0 for none.
	tlsPort int
	// login is the AUTH this helper's own connections send first (StartAs),
	// nil while the default user is open.
	login []string
}

func itoa(n int) string { return strconv.Itoa(n) }

// Start launches redis-server with append-only persistence (so a restart
// keeps data, as `task run` does) and stops it when the test ends.
func Start(tb testing.TB, extraArgs ...string) *Server {
	tb.Helper()
	return launch(tb, nil, extraArgs)
}

// StartAs is Start for a server whose default user is closed (extraArgs set
// the users): this helper's own connections log in as user.
func StartAs(tb testing.TB, user, password string, extraArgs ...string) *Server {
	tb.Helper()
	return launch(tb, []string{"AUTH", user, password}, extraArgs)
}

func launch(tb testing.TB, login, extraArgs []string) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redistest: redis-server is not on PATH (apt-get install redis-server): %v", err)
	}
	s := &Server{tb: tb, dir: tb.TempDir(), port: freePort(tb), args: extraArgs, login: login}
	s.start(true)
	tb.Cleanup(s.Stop)
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is a redis:// URL for the server's database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir is the server's working directory (where append-only files live).
func (s *Server) Dir() string { return s.dir }

// Stop shuts the server down gracefully (it may be started again).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.Resume() // a stopped process would not see the signal
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Pause freezes the server with SIGSTOP, as a hung Redis: connections are
// accepted, nothing is answered. Resume, Stop or the test's end undo it.
func (s *Server) Pause() {
	s.tb.Helper()
	if s.cmd == nil || s.paused {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.tb.Fatalf("redistest: SIGSTOP: %v", err)
	}
	s.paused = true
}

// Resume lets a paused server run again (SIGCONT).
func (s *Server) Resume() {
	if s.cmd == nil || !s.paused {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	s.paused = false
}

// Block sends a command that keeps Redis from answering anyone for a while
// (DEBUG SLEEP 5) and returns once Redis has stopped answering.
func (s *Server) Block(args ...string) {
	s.tb.Helper()
	go func() { _, _ = s.Do(args...) }()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !s.answersWithin(100 * time.Millisecond) {
			return
		}
	}
	s.tb.Fatalf("redistest: Redis still answers after %v", args)
}

// WaitAnswering waits until the server answers PING again (after Block).
func (s *Server) WaitAnswering() {
	s.tb.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s.answersWithin(time.Second) {
			return
		}
	}
	s.tb.Fatalf("redistest: Redis on %s does not answer", s.Addr())
}

// answersWithin reports whether a PING is answered within d.
func (s *Server) answersWithin(d time.Duration) bool {
	conn, err := net.DialTimeout("tcp", s.Addr(), d)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(d))
	return s.ping(conn) == nil
}

// ping logs in (StartAs) and sends PING on conn; nil when PONG came back.
func (s *Server) ping(conn net.Conn) error {
	r := bufio.NewReader(conn)
	if s.login != nil {
		if _, err := conn.Write(command(s.login)); err != nil {
			return err
		}
		if _, err := readReply(r); err != nil {
			return err
		}
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err == nil && !strings.HasPrefix(line, "+PONG") {
		err = fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return err
}

// Restart stops the server and starts it again on the same port and dir.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Stop()
	s.start(false)
}

// Start again after Stop, on the same port and dir.
func (s *Server) Start() {
	s.tb.Helper()
	if s.cmd == nil {
		s.start(false)
	}
}

// start runs redis-server and waits until it answers. Only the first start
// may move to another port (one taken since freePort found it).
func (s *Server) start(firstStart bool) {
	s.tb.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 && firstStart {
			s.port = freePort(s.tb)
		}
		args := append([]string{
			"--port", strconv.Itoa(s.port),
			"--bind", "127.0.0.1",
			"--dir", s.dir,
			"--save", "",
			"--appendonly", "yes",
			"--appendfsync", "always",
			"--logfile", "redis.log",
		}, s.args...)
		cmd := exec.Command("redis-server", args...)
		cmd.Dir = s.dir
		cmd.SysProcAttr = dieWithParent()
		if err := cmd.Start(); err != nil {
			s.tb.Fatalf("redistest: start redis-server: %v", err)
		}
		err := s.waitReady(5 * time.Second)
		if err == nil && s.pid() != cmd.Process.Pid {
			// Something answers, but not ours: ours could not bind the port.
			err = fmt.Errorf("port %d belongs to another redis-server", s.port)
		}
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			lastErr = err
			continue
		}
		s.cmd = cmd
		return
	}
	log, _ := os.ReadFile(s.dir + "/redis.log")
	s.tb.Fatalf("redistest: redis-server on %s did not answer: %v\n%s", s.Addr(), lastErr, log)
}

// pid is the process id the server on s.Addr() reports (0 if unknown).
func (s *Server) pid() int {
	info, err := s.Do("INFO", "server")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// Client opens a rueidis client to the server, closed when the test ends.
// Its timeouts are short so a test that stops or pauses Redis sees it soon.
func (s *Server) Client(tb testing.TB) rueidis.Client {
	tb.Helper()
	var user, password string
	if s.login != nil {
		user, password = s.login[1], s.login[2]
	}
	rdb, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress:      []string{s.Addr()},
		Username:         user,
		Password:         password,
		DisableCache:     true,
		ConnWriteTimeout: time.Second,
		Dialer:           net.Dialer{Timeout: time.Second},
	})
	if err != nil {
		tb.Fatalf("redistest: rueidis client for %s: %v", s.Addr(), err)
	}
	tb.Cleanup(rdb.Close)
	return rdb
}

// Do sends one command over a fresh connection and returns the reply as text,
// so tests can look at keys exactly as a student would with redis-cli.
func (s *Server) Do(args ...string) (string, error) {
	replies, err := s.DoSeq(args)
	if err != nil {
		return "", err
	}
	return replies[0], nil
}

// DoSeq sends commands in order over one connection, for a change that would
// lock the next command out (CONFIG SET requirepass); it stops at an error.
func (s *Server) DoSeq(cmds ...[]string) ([]string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr(), 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	if s.login != nil {
		if _, err := conn.Write(command(s.login)); err != nil {
			return nil, err
		}
		if _, err := readReply(r); err != nil {
			return nil, err
		}
	}
	var replies []string
	for _, args := range cmds {
		if _, err := conn.Write(command(args)); err != nil {
			return replies, err
		}
		reply, err := readReply(r)
		if err != nil {
			return replies, err
		}
		replies = append(replies, reply)
	}
	return replies, nil
}

// command is args as a RESP array.
func command(args []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return []byte(b.String())
}

// MustDo is Do that fails the test on error.
func (s *Server) MustDo(args ...string) string {
	s.tb.Helper()
	v, err := s.Do(args...)
	if err != nil {
		s.tb.Fatalf("redistest: %v: %v", args, err)
	}
	return v
}

// readReply decodes one RESP2 reply; arrays are joined with newlines and a
// nil reply is the empty string.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		parts := make([]string, 0, max(n, 0))
		for i := 0; i < n; i++ {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

func (s *Server) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			err = s.ping(conn)
			conn.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG from %s within %v: %v", s.Addr(), timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

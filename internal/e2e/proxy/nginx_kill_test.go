package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// An instance killed (kill -9) after its count script ran, before its answer
// left: nginx (proxy_next_upstream error) sends the same request, with the
// same $request_id, to the next instance. The client gets one answer, 200,
// and the view is counted once. The kill is a TCP proxy in front of
// instance a, nginx's first upstream: it forwards a count, reads a's whole
// answer (so the count is in Redis) and resets nginx's connection instead of
// sending it, which is what nginx sees of a process killed at that moment.
func TestAnInstanceKilledAfterCountingIsNotCountedTwiceBehindNginx(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx is not installed: a count retried after a kill was not checked (apt-get install nginx)")
	}
	rs := redistest.Start(t)
	trusted := []string{"-redis", rs.URL(), "-trusted-proxies", "127.0.0.1/32"}
	a := apptest.Start(t, bin, append(trusted, "-instance", "a")...)
	b := apptest.Start(t, bin, append(trusted, "-instance", "b")...)
	killer := startKillAfterCount(t, a.Addr)
	https, _ := startNginx(t, nil, killer.addr, b.Addr)

	c := apptest.Client(t)
	c.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	base := "https://" + https
	if status, _ := apptest.Get(t, c, base+"/count"); status != http.StatusOK { // the session, stored
		t.Fatalf("first count through nginx: %d", status)
	}
	token := apptest.SessionToken(t, c, base)
	stored := func() int {
		t.Helper()
		var s struct {
			Values struct {
				Views int `json:"views"`
			} `json:"values"`
		}
		if err := json.Unmarshal([]byte(rs.MustDo("GET", "sess:"+token)), &s); err != nil {
			t.Fatalf("sess:%s…: %v", token[:6], err)
		}
		return s.Values.Views
	}
	// Round-robin sends one count in two through the killer; each count
	// before it is an ordinary one.
	for i := 0; !killer.killed(); i++ {
		if i == 6 {
			t.Fatalf("no count of this session reached instance a in 6 through nginx")
		}
		before := stored()
		status, body := apptest.Get(t, c, base+"/count")
		after := stored()
		if status != http.StatusOK {
			t.Fatalf("count %d through nginx (killed: %v): status %d\n%s", i+1, killer.killed(), status, body)
		}
		shown := apptest.ViewCount(t, body)
		if after != before+1 || shown != strconv.Itoa(after) {
			t.Errorf("count %d through nginx (a killed after counting it: %v): Redis went from %d to %d views, the page shows %s; want one more, shown",
				i+1, killer.killed(), before, after, shown)
		}
	}
	if !strings.Contains(b.Log(), "counted already") {
		t.Errorf("instance b did not log the count nginx sent again:\n%s", b.Log())
	}
}

// killAfterCount is a TCP proxy to one instance that, once, forwards a
// count of a stored session (one with a cookie), reads the whole answer and
// resets the connection it came on instead of answering.
type killAfterCount struct {
	addr string
	mu   sync.Mutex
	done bool
}

func (k *killAfterCount) killed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.done
}

// kill reports whether req is the one to answer with a reset.
func (k *killAfterCount) kill(req *http.Request) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done || req.URL.Path != "/count" || req.Header.Get("Cookie") == "" {
		return false
	}
	k.done = true
	return true
}

func startKillAfterCount(t *testing.T, app string) *killAfterCount {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	k := &killAfterCount{addr: l.Addr().String()}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go k.serve(t, conn.(*net.TCPConn), app)
		}
	}()
	return k
}

// serve forwards the requests of one of nginx's (keep-alive) connections.
func (k *killAfterCount) serve(t *testing.T, conn *net.TCPConn, app string) {
	defer conn.Close()
	up, err := net.Dial("tcp", app)
	if err != nil {
		t.Errorf("kill proxy: %v", err)
		return
	}
	defer up.Close()
	in, answers := bufio.NewReader(conn), bufio.NewReader(up)
	for {
		req, err := http.ReadRequest(in)
		if err != nil {
			return // nginx closed its connection
		}
		if err := req.Write(up); err != nil {
			t.Errorf("kill proxy: to the app: %v", err)
			return
		}
		resp, err := http.ReadResponse(answers, req)
		if err != nil {
			t.Errorf("kill proxy: from the app: %v", err)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Errorf("kill proxy: from the app: %v", err)
			return
		}
		if k.kill(req) {
			_ = conn.SetLinger(0) // a reset, as from a process that died
			return
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err := resp.Write(conn); err != nil {
			return
		}
	}
}

package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// One client address may hold at most 15 connections per -class student
// (two browsers each with six, and some to spare): an idle keep-alive
// connection costs a file descriptor for two minutes, and one address must
// not take them all. Past the bound a new connection is closed before it is
// read; the connections it has keep working, and a trusted proxy, which
// carries everyone, is not bounded.
func TestOneAddressHoldsAtMostItsClassesConnections(t *testing.T) {
	const class, perAddress = 2, 30
	rs := redistest.Start(t)
	url, out := startRun(t, "-redis", rs.URL(), "-class", "2", "-trusted-proxies", "127.0.0.2")
	addr := strings.TrimPrefix(url, "http://")

	var held []*keepAlive
	for i := range perAddress {
		c := dialKeepAlive(t, addr, "127.0.0.1")
		if status, err := c.get(); status != http.StatusOK {
			t.Fatalf("connection %d of %d from 127.0.0.1: %d, %v; want 200", i+1, perAddress, status, err)
		}
		held = append(held, c)
	}
	for i := range 10 {
		c := dialKeepAlive(t, addr, "127.0.0.1")
		if status, err := c.get(); status != 0 || !closedByPeer(err) {
			t.Errorf("connection %d from 127.0.0.1 (past %d for a class of %d): status %d, %v; want it closed unanswered",
				perAddress+i+1, perAddress, class, status, err)
		}
	}
	for _, i := range []int{0, perAddress - 1} {
		if status, err := held[i].get(); status != http.StatusOK {
			t.Errorf("second request on held connection %d: %d, %v; want 200", i+1, status, err)
		}
	}
	for i := range perAddress + 10 {
		c := dialKeepAlive(t, addr, "127.0.0.2")
		if status, err := c.get(); status != http.StatusOK {
			t.Fatalf("connection %d from the trusted proxy 127.0.0.2: %d, %v; want 200", i+1, status, err)
		}
	}
	// A connection closed gives its place back.
	_ = held[0].conn.Close()
	var status int
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if status, err = dialKeepAlive(t, addr, "127.0.0.1").get(); status == http.StatusOK {
			break
		}
	}
	if status != http.StatusOK {
		t.Errorf("a new connection after one of %d was closed: %d, %v; want 200", perAddress, status, err)
	}
	if logs := out.String(); !strings.Contains(logs, `msg="connections refused`) || !strings.Contains(logs, "top=\"127.0.0.1 (") {
		t.Errorf("no line naming 127.0.0.1 for the refused connections:\n%s", logs)
	}
}

// keepAlive is a client connection that sends requests one at a time.
type keepAlive struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr, from string) *keepAlive {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &keepAlive{conn: c, r: bufio.NewReader(c)}
}

// get sends GET /healthz and reads the answer: its status, or 0 and why not.
func (k *keepAlive) get() (int, error) {
	_ = k.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := k.conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// closedByPeer: the server closed the connection (EOF or reset), not a
// timeout of a connection it holds.
func closedByPeer(err error) bool {
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		return false
	}
	return true
}

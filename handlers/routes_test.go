package handlers

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A CONNECT to an authority ("CONNECT host:port", a proxy probe) has no
// path: no page is there, so it is the root mux's plain 404, as before the
// root knew the pages' patterns. The home page's "GET /{$}" on the root mux
// matched the empty path but for the method, which made it a 405 with
// "Allow: GET, HEAD".
func TestConnectToAnAuthorityIsNotFound(t *testing.T) {
	ta := newTestApp(t)
	addr := ta.srv.Listener.Addr().String()
	for _, target := range []string{addr, "example.com:443"} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
		resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodConnect})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		conn.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Allow") != "" || string(b) != "404 page not found\n" {
			t.Errorf("CONNECT %s: %d, Allow %q, %q; want the mux's plain 404", target, resp.StatusCode, resp.Header.Get("Allow"), b)
		}
	}
}

package handlers

import (
	"bufio"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// A client that closes its side of the connection once its login is sent
// still reads the answer, while the server sees its context cancelled. A
// wrong password it was answered must count against the login limits all the
// same: settled with the cancelled context, the attempt stayed pending and was
// forgotten after 3 s, so one address was answered 75 wrong guesses a minute
// for one account (the limit: 5 per 5 minutes), with a WARN line "throttle not
// settled" for each.
func TestAWrongPasswordAnsweredToAHalfClosedClientCounts(t *testing.T) {
	ta := newTestAppWith(t, redistest.Start(t), func(c *Config) {
		// The password check lasts long enough to close the client's side
		// during it: about 130 ms, and 1.2 s under -race (cost 12 took 2.5 s
		// under -race, and a sign-up past the client's 10 s when CI ran
		// four packages at once).
		c.BcryptCost = 11
		c.Throttle.Pair.Max = 2
	})
	patient := ta.client()
	patient.Timeout = time.Minute
	ta.register(patient, "kim", "kim-password")
	addr := ta.srv.Listener.Addr().String()
	guess := func(halfClose bool) int {
		t.Helper()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		body := url.Values{"username": {"kim"}, "password": {"wrong-guess"}}.Encode()
		_, _ = conn.Write([]byte("POST /login HTTP/1.1\r\nHost: " + addr +
			"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body))
		if halfClose {
			time.Sleep(100 * time.Millisecond) // the account is read; bcrypt runs
			if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
				t.Fatal(err)
			}
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 2 {
		if got := guess(true); got != http.StatusUnauthorized {
			t.Fatalf("half-closed wrong guess %d answered %d, want 401 (the answer this test is about)", i+1, got)
		}
	}
	time.Sleep(3500 * time.Millisecond) // longer than an attempt stays pending
	if got := guess(false); got != http.StatusTooManyRequests {
		t.Errorf("a wrong guess after 2 answered half-closed ones: %d, want 429 (the limit is 2)", got)
	}
	if logged(ta.logs.String(), "throttle not settled") {
		t.Errorf("a client that closed its side left a throttle ticket unsettled:\n%s", ta.logs.String())
	}
}

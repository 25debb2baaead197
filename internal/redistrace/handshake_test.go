package redistrace

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
)

// What a new connection's handshake records, however the client's writes
// split it, and nothing once a command of the app's follows.
func TestHandshakeIsReadFromWhatIsWritten(t *testing.T) {
	resp := func(args ...string) string {
		var b strings.Builder
		b.WriteString("*" + itoa(int64(len(args))) + "\r\n")
		for _, a := range args {
			b.WriteString("$" + itoa(int64(len(a))) + "\r\n" + a + "\r\n")
		}
		return b.String()
	}
	written := resp("HELLO", "3", "AUTH", "app", "secret", "SETNAME", "lab") + resp("CLIENT", "TRACKING", "ON", "OPTIN") +
		resp("SELECT", "2") + resp("GET", "user:ann") + resp("AUTH", "later")
	want := []string{`HELLO 3 AUTH (redacted) (redacted) SETNAME lab`, `CLIENT TRACKING ON OPTIN`, `SELECT 2`}
	for _, size := range []int{1, 3, 7, len(written)} {
		ctx, tr := Start(context.Background())
		client, server := net.Pipe()
		go func() {
			buf := make([]byte, 256)
			for {
				if _, err := server.Read(buf); err != nil {
					return
				}
			}
		}()
		c := WatchHandshake(ctx, client)
		for i := 0; i < len(written); i += size {
			if _, err := c.Write([]byte(written[i:min(i+size, len(written))])); err != nil {
				t.Fatal(err)
			}
		}
		client.Close()
		var got []string
		tr.Each(func(c Command) {
			if !c.Handshake {
				t.Errorf("%v not marked as a handshake", c.Args)
			}
			got = append(got, strings.Join(c.Args, " "))
		})
		if !slices.Equal(got, want) {
			t.Errorf("writes of %d bytes: recorded %q, want %q", size, got, want)
		}
	}
	if c, _ := net.Pipe(); WatchHandshake(context.Background(), c) != c {
		t.Error("an untraced dial (the background's) is watched")
	}
}

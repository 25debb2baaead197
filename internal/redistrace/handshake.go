package redistrace

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
)

// WatchHandshake returns c, which a Redis client has just dialed for ctx,
// recording in ctx's trace the handshake it sends on it (HELLO, AUTH,
// CLIENT TRACKING, SELECT…), read from the bytes written: the client sends
// it below any hook. Nothing is recorded for an untraced ctx (a connection
// opened in the background), and nothing after the handshake.
func WatchHandshake(ctx context.Context, c net.Conn) net.Conn {
	t := From(ctx)
	if t == nil {
		return c
	}
	return &handshakeConn{Conn: c, trace: t}
}

type handshakeConn struct {
	net.Conn
	mu    sync.Mutex
	trace *Trace // nil once the handshake is over
	buf   []byte // written and not yet parsed
}

// maxHandshake bounds what is kept while a command is incomplete.
const maxHandshake = 4096

func (c *handshakeConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.trace != nil {
		c.buf = append(c.buf, b...)
		c.parse()
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// parse records each whole command in buf while they are a handshake's.
func (c *handshakeConn) parse() {
	for c.trace != nil {
		args, n := parseCommand(c.buf)
		switch {
		case n < 0 || n == 0 && len(c.buf) > maxHandshake, n > 0 && !isHandshake(args):
			c.trace, c.buf = nil, nil
			return
		case n == 0:
			return
		}
		c.trace.Add(Command{Args: Redact(args), Handshake: true})
		c.buf = c.buf[n:]
	}
}

// isHandshake: a command a Redis client sends on a new connection before
// any of the app's (rueidis's _newPipe, redigo's DialContext).
func isHandshake(args []string) bool {
	switch strings.ToUpper(args[0]) {
	case "HELLO", "AUTH", "SELECT", "READONLY":
		return true
	case "CLIENT":
		if len(args) < 2 {
			return false
		}
		switch strings.ToUpper(args[1]) {
		case "TRACKING", "SETNAME", "SETINFO", "NO-EVICT", "NO-TOUCH", "CAPA":
			return true
		}
	}
	return false
}

// parseCommand reads one RESP array of bulk strings (a command as a client
// writes it) from b: its arguments and length; n == 0: not all there yet;
// n < 0: not a command.
func parseCommand(b []byte) (args []string, n int) {
	count, i := parseLen(b, 0, '*')
	if i <= 0 || count < 1 {
		return nil, i
	}
	args = make([]string, 0, count)
	for range count {
		size, j := parseLen(b, i, '$')
		if j <= 0 {
			return nil, j
		}
		if len(b) < j+size+2 {
			return nil, 0
		}
		args = append(args, string(b[j:j+size]))
		i = j + size + 2
	}
	return args, i
}

// parseLen reads "<prefix><number>\r\n" at b[i:]: the number and where the
// line ends; end == 0: incomplete, end < 0: something else.
func parseLen(b []byte, i int, prefix byte) (n, end int) {
	if i >= len(b) {
		return 0, 0
	}
	if b[i] != prefix {
		return 0, -1
	}
	line := bytes.IndexByte(b[i:], '\n')
	if line < 0 {
		return 0, 0
	}
	n, err := strconv.Atoi(strings.TrimSuffix(string(b[i+1:i+line]), "\r"))
	if err != nil || n < 0 {
		return 0, -1
	}
	return n, i + line + 1
}

// Redact is a command's arguments as MONITOR prints them: an AUTH's user
// and password, and HELLO's after AUTH, are "(redacted)".
func Redact(args []string) []string {
	if len(args) == 0 {
		return args
	}
	switch strings.ToUpper(args[0]) {
	case "AUTH":
		out := make([]string, len(args))
		out[0] = args[0]
		for i := 1; i < len(args); i++ {
			out[i] = redacted
		}
		return out
	case "HELLO":
		for i := 1; i+2 < len(args); i++ {
			if strings.EqualFold(args[i], "AUTH") {
				out := append([]string(nil), args...)
				out[i+1], out[i+2] = redacted, redacted
				return out
			}
		}
	}
	return args
}

const redacted = "(redacted)"

package redisconn

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/gomodule/redigo/redis"
	"github.com/redis/rueidis"
)

// Kind says why Redis cannot serve right now. It is short and fixed, so a
// log line or /readyz can name it without the error's details.
type Kind string

// The kinds of "Redis cannot serve right now". The error replies are Redis's
// own first word, so an operator can look them up.
const (
	Refused     Kind = "connection refused" // nothing listens at the address
	ConnLost    Kind = "connection lost"    // reset or closed: a fresh connection may work
	Unreachable Kind = "unreachable"        // any other network failure (DNS, no route)
	TimedOut    Kind = "timed out"          // Redis is hung, or too slow to wait for
	Closing     Kind = "client closing"     // the app is shutting down
	NotMaster   Kind = "not a master"       // a replica now (a failover moved the master)
	FailingOver Kind = "failing over"       // Sentinel is switching masters (ErrFailingOver)
	NoReplica   Kind = "no replica in sync" // Sentinel: writes refused while the master has none (ErrNoReplica)
	// Sentinel: the master applied a write no replica acknowledged in time
	// (ErrNotReplicated), so a failover may discard it.
	NotReplicated Kind = "not replicated"
)

// MayHaveRun says whether Redis may have run the command although the client
// saw an error (sent, no answer); every other kind changed nothing.
func (k Kind) MayHaveRun() bool { return k == TimedOut || k == ConnLost || k == NotReplicated }

// unavailableReplies mean Redis is there but cannot serve now (not a command
// this app got wrong); the command changed nothing.
var unavailableReplies = []string{
	"OOM",        // at maxmemory with noeviction: every write is refused
	"NOAUTH",     // Redis now wants a password (it restarted with one)
	"WRONGPASS",  // the password or user changed
	"READONLY",   // a replica: the master moved (failover)
	"MASTERDOWN", // a replica that lost its master
	"NOREPLICAS", // min-replicas-to-write: a master whose replicas left (a failover)
	"MISCONF",    // the last snapshot failed and writes are stopped
	"LOADING",    // loading the dataset after a restart
	"BUSY",       // a script runs too long
}

// Unavailable reports whether err means Redis cannot serve right now (an
// outage, not a bug in a command), and why.
func Unavailable(err error) (Kind, bool) {
	if err == nil {
		return "", false
	}
	var netErr net.Error
	switch {
	case errors.Is(err, ErrNotReplicated): // first: it wraps why the wait ended
		return NotReplicated, true
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return TimedOut, true
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused, true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed):
		return ConnLost, true
	case errors.Is(err, rueidis.ErrClosing):
		return Closing, true
	case errors.Is(err, errNotMaster):
		return NotMaster, true
	case errors.Is(err, ErrFailingOver):
		return FailingOver, true
	case errors.Is(err, ErrNoReplica):
		return NoReplica, true
	case errors.As(err, &netErr):
		return Unreachable, true
	}
	// An error reply; or, when the reply came during the connection's
	// handshake (HELLO, CLIENT TRACKING), rueidis's text that starts with it.
	text := err.Error()
	if rerr, ok := errors.AsType[*rueidis.RedisError](err); ok {
		text = rerr.Error()
	} else if rerr, ok := errors.AsType[redis.Error](err); ok { // the session pool's
		text = string(rerr)
	}
	word, _, _ := strings.Cut(text, " ")
	for _, p := range unavailableReplies {
		if word == p {
			return Kind(p), true
		}
	}
	return "", false
}

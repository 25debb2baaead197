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
	Refused       Kind = "connection refused" // nothing listens at the address
	ConnLost      Kind = "connection lost"    // reset or closed: a fresh connection may work
	Unreachable   Kind = "unreachable"        // any other network failure (DNS, no route)
	TimedOut      Kind = "timed out"          // Redis is hung, or too slow to wait for
	Closing       Kind = "client closing"     // the app is shutting down
	PoolExhausted Kind = "pool exhausted"
)

// unavailableReplies are the error replies that mean Redis is there but
// cannot serve right now (as opposed to a command this app got wrong).
var unavailableReplies = []string{"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"}

// Unavailable reports whether err means Redis cannot serve right now (an
// outage, not a bug in a command), and why. It knows both drivers' errors.
func Unavailable(err error) (Kind, bool) {
	if err == nil {
		return "", false
	}
	var netErr net.Error
	switch {
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
	case errors.Is(err, redis.ErrPoolExhausted):
		return PoolExhausted, true
	case errors.As(err, &netErr):
		return Unreachable, true
	}
	if reply, ok := errorReply(err); ok {
		word, _, _ := strings.Cut(reply, " ")
		for _, p := range unavailableReplies {
			if word == p {
				return Kind(p), true
			}
		}
	}
	return "", false
}

// errorReply is the text of an error reply from Redis, from either driver.
func errorReply(err error) (string, bool) {
	if rerr, ok := errors.AsType[*rueidis.RedisError](err); ok {
		return rerr.Error(), true
	}
	if rerr, ok := errors.AsType[redis.Error](err); ok {
		return string(rerr), true
	}
	return "", false
}

// deadConn reports an error that a fresh connection may not have: the peer
// closed or reset the connection. Timeouts and Redis error replies are not.
func deadConn(ctx context.Context, err error) bool {
	kind, _ := Unavailable(err)
	return kind == ConnLost && ctx.Err() == nil
}

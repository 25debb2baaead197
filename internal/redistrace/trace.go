// Package redistrace records the Redis commands one request sends, as MONITOR
// prints them, with a short reply and time each, so a page can show what it
// cost; nothing extra goes to Redis, and an untraced request pays one lookup.
package redistrace

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Command is one command as the request sent it.
type Command struct {
	Args  []string      // as sent, uncut: a page cuts them (AppendArg)
	Reply string        // "264 B", "3", "OK", "(nil)", "[3, 90 B]", "error NOSCRIPT"; "" when Queued
	Took  time.Duration // from sending to the reply, as the app waited for it
	// Queued: sent in one round trip with the commands up to the next one
	// with a reply, which carries the reply and the time.
	Queued bool
	// Cached: answered from rueidis's client-side cache; nothing was sent.
	Cached bool
	// Unsent: refused by the client before it was sent (a Refusal), so
	// MONITOR never printed it; Reply says why.
	Unsent bool
	// Handshake: sent to open the connection the request needed (HELLO,
	// AUTH, SELECT…); Reply is "" when the client does not let us see it.
	Handshake bool
	Script    string // a script call: the script's name, a note beside its hash
	Ran       string // a script call: the commands it ran inside Redis (see NextRan)
}

// maxCommands bounds a trace: a page never needs more.
const maxCommands = 48

// Trace is the commands of one request. Its methods are safe for
// concurrent use and do nothing on a nil *Trace.
type Trace struct {
	mu      sync.Mutex
	cmds    []Command
	first   [4]Command // room for a usual request's commands, in one allocation
	dropped int
}

type ctxKey struct{}

// Start returns a context that records into a new trace.
func Start(ctx context.Context) (context.Context, *Trace) {
	t := &Trace{}
	t.cmds = t.first[:0]
	return context.WithValue(ctx, ctxKey{}, t), t
}

// From is the trace of ctx, or nil when the request is not traced.
func From(ctx context.Context) *Trace {
	t, _ := ctx.Value(ctxKey{}).(*Trace)
	return t
}

// Add records one command.
func (t *Trace) Add(c Command) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.cmds) >= maxCommands {
		t.dropped++
		return
	}
	t.cmds = append(t.cmds, c)
}

// Each calls fn with the recorded commands in the order they were sent,
// and returns how many more were sent but not kept.
func (t *Trace) Each(fn func(Command)) (dropped int) {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.cmds {
		fn(c)
	}
	return t.dropped
}

// Size is a reply of n bytes, as a page shows it.
func Size(n int) string { return sizeWith(n, "") }

// sizeWith is Size followed by more words, in one allocation.
func sizeWith(n int, more string) string {
	var buf [64]byte
	b := strconv.AppendInt(buf[:0], int64(n), 10)
	return string(append(append(b, " B"...), more...))
}

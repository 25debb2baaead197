// Package redistrace records the Redis commands one request sends, in order,
// with a short reply and the time each took, so a page can show what it
// cost in Redis. It records what the app's own clients send for the
// request's context: nothing extra goes to Redis (no MONITOR), and a request
// without a trace in its context pays one context lookup per command.
package redistrace

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Command is one command as a page shows it.
type Command struct {
	Name  string        // "GET", "EVALSHA count", "MULTI SET PEXPIREAT EXEC"
	Key   string        // its first key, a session token already cut short
	Reply string        // "264 B", "3", "OK", "(nil)", "4 items", "error"
	Took  time.Duration // from sending to the reply, as the app waited for it
}

// maxCommands bounds a trace: a page never needs more, and a request that
// sends many commands must not grow one without limit.
const maxCommands = 32

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

// scripts names the Lua scripts the app runs, by SHA-1: the app sends
// EVALSHA, which names a script only by its hash. The names are kept as
// shown ("EVALSHA count"), so a traced command costs no string building.
var scripts sync.Map // sha1 hex -> scriptNames

type scriptNames struct{ evalsha, eval string }

// NameScript records the name a page shows for a Lua script, and returns
// the script's source, so a script is named where it is declared:
//
//	var incr = rueidis.NewLuaScript(redistrace.NameScript("count", src))
func NameScript(name, src string) string {
	scripts.Store(sha1hex(src), scriptNames{"EVALSHA " + name, "EVAL " + name})
	return src
}

// scriptName is how a page shows a script call: cmd (EVALSHA or EVAL) and
// the script's name, or the start of its hash for a script never named.
func scriptName(cmd, sha string) string {
	if n, ok := scripts.Load(sha); ok {
		if cmd == "EVALSHA" {
			return n.(scriptNames).evalsha
		}
		if cmd == "EVAL" {
			return n.(scriptNames).eval
		}
		return cmd + " " + n.(scriptNames).evalsha[len("EVALSHA "):]
	}
	if len(sha) > 8 {
		sha = sha[:8] + "…"
	}
	return cmd + " " + sha
}

// Size is a reply of n bytes, as a page shows it.
func Size(n int) string { return sizeWith(n, "") }

// sizeWith is Size followed by more words, in one allocation.
func sizeWith(n int, more string) string {
	var buf [64]byte
	b := strconv.AppendInt(buf[:0], int64(n), 10)
	return string(append(append(b, " B"...), more...))
}

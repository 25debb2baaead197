package redistrace

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Client returns c with every command sent for a traced context recorded in
// its trace, a hook shaped like rueidishook.WithHook (not in our module
// proxy). optIn: c caches in opt-in mode, where a cache miss is sent as
// CLIENT CACHING YES, MULTI, PTTL, the read, EXEC. Pub/sub passes through.
func Client(c rueidis.Client, optIn bool) rueidis.Client {
	return traced{Client: c, optIn: optIn}
}

type traced struct {
	rueidis.Client
	optIn bool
}

// args copies a command's arguments: rueidis recycles a command once it is
// done. The strings themselves are not copied; they are never changed.
func args(cmd []string) []string {
	return append(make([]string, 0, len(cmd)), cmd...)
}

func (t traced) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	tr := From(ctx)
	if tr == nil {
		return t.Client.Do(ctx, cmd)
	}
	c := Command{Args: args(cmd.Commands())}
	start := time.Now()
	res := t.Client.Do(ctx, cmd)
	if !c.refused(res.Error()) {
		c.Took = time.Since(start)
		c.Reply = c.result(res)
	}
	tr.Add(c)
	return res
}

// Refusal is the error of a command the client refused before sending it
// (Sentinel failing the master over, no replica in sync): a trace lists the
// command as not sent, since MONITOR never printed it.
type Refusal struct {
	Why string // a few words for the trace: "the master has no replica in sync"
	Msg string // the error's text
}

func (r *Refusal) Error() string { return r.Msg }

// refused marks c as not sent when err is a Refusal.
func (c *Command) refused(err error) bool {
	r, ok := errors.AsType[*Refusal](err)
	if ok {
		c.Unsent, c.Queued, c.Reply = true, false, "not sent: "+r.Why
	}
	return ok
}

// result is the reply as a page shows it; for one of our scripts, also
// what it ran (see NewScript).
func (c *Command) result(res rueidis.RedisResult) string {
	if len(c.Args) > 1 && (c.Args[0] == "EVALSHA" || c.Args[0] == "EVAL") && res.Error() == nil {
		sha := c.Args[1]
		if c.Args[0] == "EVAL" {
			sha = sha1hex(sha)
		}
		if name, ok := scriptOf(sha); ok {
			c.Script = name
			m, _ := res.ToMessage()
			ran, result, err := unwrap(&m)
			switch {
			case errors.Is(err, errNotReported):
			case err != nil:
				c.Ran = ran
				return summarizeErr(err)
			case result == nil:
				c.Ran = ran
				return "(nil)"
			default:
				c.Ran = ran
				return summarizeMessage(result)
			}
		}
	}
	return summarize(res)
}

func (t traced) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	tr := From(ctx)
	if tr == nil {
		return t.Client.DoMulti(ctx, multi...)
	}
	cmds := make([]Command, len(multi))
	for i := range multi {
		cmds[i] = Command{Args: args(multi[i].Commands()), Queued: i < len(multi)-1}
	}
	start := time.Now()
	res := t.Client.DoMulti(ctx, multi...)
	took := time.Since(start) // one round trip for all of them
	for i, r := range res {
		if !cmds[i].refused(r.Error()) {
			if i == len(res)-1 {
				cmds[i].Took = took
			}
			cmds[i].Reply = cmds[i].result(r)
		}
		tr.Add(cmds[i])
	}
	return res
}

// The commands rueidis wraps a read in when its opt-in cache misses.
var (
	cachingYes = []string{"CLIENT", "CACHING", "YES"}
	multi      = []string{"MULTI"}
	exec       = []string{"EXEC"}
)

func (t traced) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	tr := From(ctx)
	if tr == nil {
		return t.Client.DoCache(ctx, cmd, ttl)
	}
	c := Command{Args: args(cmd.Commands())}
	start := time.Now()
	res := t.Client.DoCache(ctx, cmd, ttl)
	took := time.Since(start)
	switch {
	case c.refused(res.Error()):
		tr.Add(c)
	case res.IsCacheHit():
		c.Cached = true
		c.Reply = summarizeWith(res, cacheHit)
		tr.Add(c)
	case t.optIn && len(c.Args) > 1:
		c.Reply = summarizeWith(res, cacheMiss)
		tr.Add(Command{Args: cachingYes, Queued: true})
		tr.Add(Command{Args: multi, Queued: true})
		tr.Add(Command{Args: []string{"PTTL", c.Args[1]}, Queued: true})
		tr.Add(Command{Args: c.Args, Queued: true})
		tr.Add(Command{Args: exec, Reply: c.Reply, Took: took})
	default:
		c.Reply, c.Took = summarize(res), took
		tr.Add(c)
	}
	return res
}

// cacheHit follows a reply from the client-side cache (no round trip),
// cacheMiss one that was sent and is now cached.
const (
	cacheHit  = " from the client-side cache (not sent)"
	cacheMiss = ", now in the client-side cache"
)

// summarizeWith is summarize followed by more words; a string reply (what
// the app reads through the cache) costs one allocation.
func summarizeWith(res rueidis.RedisResult, more string) string {
	if m, err := res.ToMessage(); err == nil && m.IsString() {
		if s, _ := m.ToString(); len(s) > 8 {
			return sizeWith(len(s), more)
		}
	}
	return summarize(res) + more
}

// summarize is a reply in a few characters: a string by its size unless it
// is a short word, an array by its length.
func summarize(res rueidis.RedisResult) string {
	if err := res.Error(); err != nil {
		return summarizeErr(err)
	}
	m, err := res.ToMessage()
	if err != nil {
		return "failed"
	}
	return summarizeMessage(&m)
}

// summarizeErr is an error reply as a page shows it: its first word.
func summarizeErr(err error) string {
	if rueidis.IsRedisNil(err) {
		return "(nil)"
	}
	if re, ok := rueidis.IsRedisErr(err); ok {
		msg := re.Error()
		if i := indexSpace(msg); i > 0 {
			msg = msg[:i]
		}
		return "error " + msg
	}
	return "failed"
}

func summarizeMessage(m *rueidis.RedisMessage) string {
	switch {
	case m.IsNil():
		return "(nil)"
	case m.IsInt64():
		n, _ := m.AsInt64()
		return itoa(n)
	case m.IsString():
		s, _ := m.ToString()
		if len(s) <= 8 && printable(s) {
			return s
		}
		return Size(len(s))
	case m.IsMap():
		fields, _ := m.AsMap()
		return itoa(int64(len(fields))) + " fields"
	case m.IsArray():
		items, _ := m.ToArray()
		if len(items) > 0 && len(items) <= 3 { // a script's few results: [3, 90 B]
			parts := make([]string, len(items))
			for i := range items {
				parts[i] = summarizeMessage(&items[i])
			}
			return "[" + strings.Join(parts, ", ") + "]"
		}
		return itoa(int64(len(items))) + " items"
	}
	return m.String()
}

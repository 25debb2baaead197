package redistrace

import (
	"context"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Client returns c with every command it sends for a traced context
// recorded in that context's trace. It is a rueidis hook in the shape of
// rueidishook.WithHook (that module is not in our module proxy): the
// wrapper sees each command and its result, on the caller's goroutine.
// cutKey shows a key the way a page may show it (a session token cut
// short). Pub/sub and dedicated connections pass through: they belong to
// no request.
func Client(c rueidis.Client, cutKey func(string) string) rueidis.Client {
	return traced{Client: c, cutKey: cutKey}
}

type traced struct {
	rueidis.Client
	cutKey func(string) string
}

// describe names a command and its first key. It must run before the
// command is sent: rueidis recycles a command once it is done.
func (t traced) describe(args []string) (name, key string) {
	if len(args) == 0 {
		return "", ""
	}
	name = args[0]
	switch name {
	case "EVALSHA", "EVALSHA_RO":
		if len(args) > 1 {
			name = scriptName(name, args[1])
		}
		if len(args) > 3 && args[2] != "0" {
			key = args[3]
		}
	case "EVAL", "EVAL_RO":
		if len(args) > 1 {
			name = scriptName(name, sha1hex(args[1]))
		}
		if len(args) > 3 && args[2] != "0" {
			key = args[3]
		}
	case "PUBLISH", "PING", "INFO", "DBSIZE":
		if len(args) > 1 && name == "PUBLISH" {
			key = args[1]
		}
	default:
		if len(args) > 1 {
			key = args[1]
		}
	}
	if name == "MEMORY" && len(args) > 2 { // MEMORY USAGE <key>
		name, key = "MEMORY "+args[1], args[2]
	}
	return name, t.cutKey(key)
}

func (t traced) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	tr := From(ctx)
	if tr == nil {
		return t.Client.Do(ctx, cmd)
	}
	name, key := t.describe(cmd.Commands())
	start := time.Now()
	res := t.Client.Do(ctx, cmd)
	tr.Add(Command{Name: name, Key: key, Reply: summarize(res), Took: time.Since(start)})
	return res
}

func (t traced) DoMulti(ctx context.Context, multi ...rueidis.Completed) []rueidis.RedisResult {
	tr := From(ctx)
	if tr == nil {
		return t.Client.DoMulti(ctx, multi...)
	}
	names := make([][2]string, len(multi))
	for i := range multi {
		names[i][0], names[i][1] = t.describe(multi[i].Commands())
	}
	start := time.Now()
	res := t.Client.DoMulti(ctx, multi...)
	took := time.Since(start) // one round trip for all of them
	for i, r := range res {
		tr.Add(Command{Name: names[i][0], Key: names[i][1], Reply: summarize(r), Took: took})
	}
	return res
}

func (t traced) DoCache(ctx context.Context, cmd rueidis.Cacheable, ttl time.Duration) rueidis.RedisResult {
	tr := From(ctx)
	if tr == nil {
		return t.Client.DoCache(ctx, cmd, ttl)
	}
	name, key := t.describe(cmd.Commands())
	start := time.Now()
	res := t.Client.DoCache(ctx, cmd, ttl)
	var reply string
	if res.IsCacheHit() {
		reply = summarizeWith(res, cacheHit)
	} else {
		reply = summarize(res)
	}
	tr.Add(Command{Name: name, Key: key, Reply: reply, Took: time.Since(start)})
	return res
}

// cacheHit follows the reply of a read rueidis answered from its
// client-side cache: no round trip was made.
const cacheHit = " from the client-side cache (not sent)"

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

// summarize is a reply in a few characters: a string by its size (a
// session is a few hundred bytes of JSON) unless it is a short word, a
// number as itself, an array by its length.
func summarize(res rueidis.RedisResult) string {
	if err := res.Error(); err != nil {
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
	m, err := res.ToMessage()
	if err != nil {
		return "failed"
	}
	return summarizeMessage(&m)
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

package views

import (
	"bytes"
	"html"
	"strconv"
	"time"
)

// WriteTrace writes a request's commands, in the order they were sent, as
// the Redis panel's "what this request did" section (inside RedisTraceSlot).
// It is written by hand rather than with templ because it goes into every
// page after the session is saved, and the 5 % that capturing may cost
// (go tool task bench) leaves no room for a component's allocations.
func WriteTrace(b *bytes.Buffer, t Trace, server RedisServer) {
	b.WriteString(`<h2>What this request did in Redis</h2><p><code data-testid="trace-request">`)
	b.WriteString(t.Method)
	b.WriteByte(' ')
	b.WriteString(html.EscapeString(t.Path))
	b.WriteString(`</code> `)
	if len(t.Commands) == 0 {
		b.WriteString(`sent nothing to Redis.</p>`)
		return
	}
	b.WriteString(`sent these commands to the Redis at <code data-testid="redis-server">`)
	b.WriteString(html.EscapeString(server.Where))
	b.WriteString(`</code>, in this order:</p><ol class="redis-trace-list" data-testid="redis-trace">`)
	var num [24]byte
	for _, c := range t.Commands {
		b.WriteString(`<li data-testid="trace-command"><code>`)
		b.WriteString(html.EscapeString(c.Name))
		b.WriteString(`</code>`)
		if c.Key != "" {
			b.WriteString(` <code>`)
			b.WriteString(html.EscapeString(c.Key))
			b.WriteString(`</code>`)
		}
		b.WriteString(` → `)
		b.WriteString(html.EscapeString(c.Reply))
		b.WriteString(`, `)
		b.Write(appendMillis(num[:0], c.Took))
		b.WriteString(`</li>`)
	}
	if t.Dropped > 0 {
		b.WriteString(`<li>… and `)
		b.Write(strconv.AppendInt(num[:0], int64(t.Dropped), 10))
		b.WriteString(` more</li>`)
	}
	b.WriteString(`</ol>`)
}

// appendMillis is d as "0.21 ms" (two decimals under a millisecond).
func appendMillis(dst []byte, d time.Duration) []byte {
	ms := float64(d) / float64(time.Millisecond)
	prec := 1
	if ms < 1 {
		prec = 2
	}
	return append(strconv.AppendFloat(dst, ms, 'f', prec, 64), " ms"...)
}

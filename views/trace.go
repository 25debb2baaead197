package views

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// WriteTrace writes a request's commands as MONITOR prints them, for the
// Redis panel; by hand, not templ, because it goes into every page and the
// 5 % that tracing may cost (go tool task bench) leaves no room for more.
func WriteTrace(b *bytes.Buffer, t Trace, server RedisServer) {
	b.WriteString(`<h2>What this request did in Redis</h2><p><code data-testid="trace-request">`)
	b.WriteString(t.Method)
	b.WriteByte(' ')
	writeEscaped(b, t.Path)
	b.WriteString(`</code> `)
	if len(t.Commands) == 0 {
		b.WriteString(`sent nothing to Redis.</p>`)
		writeOthers(b, t.InProcess)
		return
	}
	sent := 0
	for _, c := range t.Commands {
		if !c.Cached && !c.Unsent {
			sent++
		}
	}
	if sent == 0 {
		// A cached read, or a command refused before it was sent: nothing
		// MONITOR would print, though the list says what it took.
		b.WriteString(`sent nothing to the Redis at <code data-testid="redis-server">`)
		writeEscaped(b, server.Where)
		b.WriteString(`</code>: <code>redis-cli MONITOR</code> prints none of these. `)
	} else {
		b.WriteString(`sent these commands to the Redis at <code data-testid="redis-server">`)
		writeEscaped(b, server.Where)
		b.WriteString(`</code>, in this order, as <code>redis-cli MONITOR</code> prints them`)
		if sent < len(t.Commands) {
			b.WriteString(`, but for those marked not sent, which it does not print`)
		}
		b.WriteString(`. `)
	}
	b.WriteString(`<small>Cut short here, with … where the cut is, even inside an argument: anything shaped like a session token (a full token is a password) or a session ID (16 hex digits, as an account's credential generation is too), a password hash, and what follows a long argument's first 48 bytes.</small></p>`)
	b.WriteString(`<ol class="redis-trace-list" data-testid="redis-trace">`)
	writeCommands(b, t, `<li data-testid="trace-command"`)
	b.WriteString(`</ol>`)
	writeOthers(b, t.InProcess)
}

// writeCommands writes a trace's commands as list items opened with item.
func writeCommands(b *bytes.Buffer, t Trace, item string) {
	var num [24]byte
	for _, c := range t.Commands {
		b.WriteString(item)
		if c.Cached || c.Unsent {
			b.WriteString(` data-sent="no"`)
		}
		b.WriteString(`><code>`)
		writeArgs(b, c.Args)
		b.WriteString(`</code>`)
		if c.Script != "" {
			b.WriteString(` <small>(the `)
			writeEscaped(b, c.Script)
			b.WriteString(` script)</small>`)
		}
		if c.Handshake {
			b.WriteString(` <small>(opening the connection this request needed)</small>`)
		}
		switch {
		case c.Queued:
			b.WriteString(` <small>sent with the next, in one round trip</small>`)
		case c.Handshake && c.Reply == "": // the client reads these replies itself
		case c.Unsent:
			b.WriteString(` → `)
			writeEscaped(b, c.Reply)
		default:
			b.WriteString(` → `)
			writeEscaped(b, c.Reply)
			b.WriteString(`, `)
			b.Write(appendMillis(num[:0], c.Took))
		}
		if c.Ran != "" {
			b.WriteString(`<ol class="redis-trace-lua" data-testid="trace-script" aria-label="what the script ran inside Redis">`)
			for ran := c.Ran; ran != ""; {
				var cmd string
				cmd, ran = redistrace.NextRan(ran)
				b.WriteString(`<li data-testid="trace-script-command"><small>inside Redis:</small> <code>`)
				for more, first := true, true; more; first = false {
					var arg string
					arg, cmd, more = redistrace.NextArg(cmd)
					if !first {
						b.WriteByte(' ')
					}
					kept, cut := redistrace.Kept(arg)
					appendArg(b, kept, cut)
				}
				b.WriteString(`</code></li>`)
			}
			b.WriteString(`</ol>`)
		}
		b.WriteString(`</li>`)
	}
	if t.Dropped > 0 {
		b.WriteString(`<li>… and `)
		b.Write(strconv.AppendInt(num[:0], int64(t.Dropped), 10))
		b.WriteString(` more</li>`)
	}
}

// Own is whose own traffic WriteOwnTrace lists: not the request's, though
// MONITOR prints it among the request's.
type Own string

const (
	OwnPanel Own = "panel" // the Redis panel's own request (GET /redis)
	OwnLive  Own = "live"  // the page's live stream (GET /live) as it opened
)

// WriteOwnTrace lists the commands of the panel's own request or of the
// live stream, each marked as not part of the page's request, so a student
// can place every line MONITOR prints.
func WriteOwnTrace(b *bytes.Buffer, who Own, t Trace) {
	b.WriteString(`<h3>Not part of this request: `)
	if who == OwnPanel {
		b.WriteString(`the panel's own</h3><p><small>The request that brought the keys above, <code>GET /redis</code>, came after the page's`)
	} else {
		b.WriteString(`the live stream's</h3><p><small>This browser's live stream, <code>GET /live</code> (one for all its tabs), opened after the page`)
	}
	if len(t.Commands) == 0 {
		b.WriteString(` and sent nothing to Redis.</small></p>`)
		return
	}
	b.WriteString(` and sent these, which <code>MONITOR</code> prints too:</small></p><ol class="redis-trace-list redis-own-list" data-testid="own-trace">`)
	writeCommands(b, t, `<li data-testid="own-command" data-own="`+string(who)+`"`)
	b.WriteString(`</ol>`)
}

// writeOthers names what MONITOR prints beside a request's commands, so a
// student does not take it for part of the request.
func writeOthers(b *bytes.Buffer, inProcess bool) {
	b.WriteString(`<p data-testid="trace-others"><small>Not part of this request, though <code>MONITOR</code> prints them too: `)
	if inProcess { // sessions and the live stream stay in this process
		b.WriteString(`on a page with the Redis panel, the panel's own request (<code>GET /redis</code>, which reads your account when you are logged in), listed at the foot of the panel; other browsers' requests; `)
	} else {
		b.WriteString(`on a page with the Redis panel, the panel's own request (<code>GET /redis</code>), and on a page with live updates, its live stream (<code>GET /live</code>, as it opened), each listed at the foot of the panel; `)
		b.WriteString(`the end of the previous page's stream (<code>UNSUBSCRIBE</code> of channels no other page needs, and its browsers list script); `)
		b.WriteString(`an open Lab page reading its steps again (<code>GET /lab/steps</code>), once for each change it shows: a count of this session or of another browser of this computer, a lab outcome another browser saw (a page opened or left elsewhere is no change); other browsers' requests; `)
	}
	b.WriteString(`and the Redis client's own upkeep: <code>PING</code> on an idle connection, and the handshake (<code>HELLO</code>, <code>CLIENT TRACKING</code>…) of a connection it opens in the background`)
	if !inProcess {
		b.WriteString(`, such as the live stream's`)
	}
	b.WriteString(`; with Redis Sentinel, the rounds that wait for a replica to have every write before it is acknowledged (<code>SET ready:replicated …</code> and <code>WAIT 1 1000</code>, one round for all requests waiting at once). A connection opened for this request shows its handshake in the list above.</small></p>`)
}

func writeArgs(b *bytes.Buffer, args []string) {
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		appendArg(b, a, false)
	}
}

// shownArg is how much of an argument a trace shows: a script's SHA-1
// whole, a long value (a session's JSON, a script's source) cut.
const shownArg = 48

// tokenRun is a session token's length: a run of token characters this long
// is cut to six wherever it appears, as sessions.CutKey does. idRun is a
// session ID's: the other browsers' IDs are in what a count sends.
const (
	tokenRun = 43
	idRun    = 16
)

// appendArg writes one argument as MONITOR prints it, HTML-escaped, with any
// token or bcrypt hash cut and cut after shownArg bytes. partial: arg is only
// the start, so a run of token characters at its end may start a token.
// It appends to b's free space and writes that once: a count's trace is a
// few hundred runs and escapes, each a WriteString call of its own before.
func appendArg(b *bytes.Buffer, arg string, partial bool) {
	b.Grow(argBytes)
	b.Write(appendArgTo(b.AvailableBuffer(), arg, partial))
}

// argBytes is more than appendArgTo writes for one argument: shownArg bytes
// of five each (&amp;), a cut token or hash, the quotes and the ellipses.
const argBytes = 5*shownArg + 32

func appendArgTo(dst []byte, arg string, partial bool) []byte {
	if !partial && len(arg) <= shownArg && asItIs(arg) {
		return append(append(append(dst, '"'), arg...), '"')
	}
	dst = append(dst, '"')
	shown, endsCut := 0, false
	for i := 0; i < len(arg); {
		if shown >= shownArg {
			if endsCut { // the cut's own … already says the rest is not shown
				return append(dst, '"')
			}
			return append(dst, `…"`...)
		}
		endsCut = false
		// A run of token characters, or of other bytes up to a possible
		// bcrypt hash ($).
		if isTokenChar(arg[i]) {
			end := i
			for end < len(arg) && isTokenChar(arg[end]) {
				end++
			}
			// Token characters are all plain: appendRepr would append
			// the run as it is, after looking at each byte again.
			if end-i >= tokenRun || end-i == idRun && isHex(arg[i:end]) || partial && end == len(arg) && end-i > 6 {
				dst = append(append(dst, arg[i:i+6]...), `…`...)
				shown += 7
				i, endsCut = end, true
				continue
			}
			end = min(end, i+shownArg-shown)
			dst = append(dst, arg[i:end]...)
			shown += end - i
			i = end
			continue
		}
		if bcryptAt(arg, i) {
			dst = append(appendRepr(dst, arg[i:i+7]), `…`...) // $2a$10$: the algorithm and cost
			i += 7
			for i < len(arg) && (isTokenChar(arg[i]) || arg[i] == '.' || arg[i] == '/') {
				i++
			}
			shown += 8
			endsCut = true
			continue
		}
		end := i + 1
		for end < len(arg) && end-i < shownArg-shown && !isTokenChar(arg[end]) && arg[end] != '$' {
			end++
		}
		dst = appendRepr(dst, arg[i:end])
		shown += end - i
		i = end
	}
	if partial && !endsCut {
		dst = append(dst, `…`...)
	}
	return append(dst, '"')
}

func isTokenChar(c byte) bool { return byteClass[c]&tokenByte != 0 }

// asItIs: a whole argument (no longer than shownArg) that appendArgTo would
// write as it is, between quotes: nothing to escape, no bcrypt hash, no run
// of token characters that could be a token or a session ID. Most of a
// count's arguments are (commands, keys, numbers, this process's names), and
// one look at each byte costs them less than the general loop's runs.
func asItIs(arg string) bool {
	run := 0 // token characters just before i
	for i := 0; i < len(arg); i++ {
		switch c := byteClass[arg[i]]; {
		case c&tokenByte != 0:
			run++
		case c&quotedByte == 0:
			return false
		case run == idRun || run >= tokenRun:
			return false
		default:
			run = 0
		}
	}
	return run != idRun && run < tokenRun
}

// byteClass is what appendArg and appendRepr ask of each byte, looked up
// once (a count's trace runs through a few thousand bytes).
var byteClass = func() (t [256]uint8) {
	for c := range 256 {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			t[c] |= tokenByte
		}
		if c >= 0x20 && c <= 0x7e && !strings.ContainsRune(`\"<>&`, rune(c)) {
			t[c] |= plainByte
			if c != '$' { // a bcrypt hash's start
				t[c] |= quotedByte
			}
		}
	}
	return t
}()

const (
	tokenByte  = 1 << iota // in a session token (base64url)
	plainByte              // appended by appendRepr as it is
	quotedByte             // plain, and no hash starts with it (asItIs)
)

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// bcryptAt: a bcrypt hash ($2a$, $2b$ or $2y$, then the cost) starts at i.
func bcryptAt(s string, i int) bool {
	return strings.HasPrefix(s[i:], "$2") && len(s) >= i+7 && s[i+3] == '$' && s[i+6] == '$'
}

// appendRepr appends s as Redis's sdscatrepr writes it (what MONITOR
// prints), escaped for HTML. Bytes that need neither go a run at a time.
func appendRepr(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	plain := 0 // s[plain:i] is still to be appended as it is
	for i := 0; i < len(s); i++ {
		c := s[i]
		if byteClass[c]&plainByte != 0 {
			continue
		}
		var esc string
		switch c {
		case '\\':
			esc = `\\`
		case '"':
			esc = `\"`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		case '\t':
			esc = `\t`
		case '\a':
			esc = `\a`
		case '\b':
			esc = `\b`
		case '<':
			esc = `&lt;`
		case '>':
			esc = `&gt;`
		case '&':
			esc = `&amp;`
		}
		dst = append(dst, s[plain:i]...)
		plain = i + 1
		if esc != "" {
			dst = append(dst, esc...)
			continue
		}
		dst = append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
	}
	return append(dst, s[plain:]...)
}

// writeEscaped writes s as html.EscapeString escapes it, straight into b:
// html.EscapeString's result kept the whole Trace on the heap (a Replacer
// may return its argument). It repeats text.Render's loop on purpose: a
// string passed through that io.StringWriter escapes too (one allocation
// and 770 B more per /profile when both shared the loop).
func writeEscaped(b *bytes.Buffer, s string) {
	plain := 0 // s[plain:i] is still to be written as it is
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '\'':
			esc = "&#39;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		default:
			continue
		}
		b.WriteString(s[plain:i])
		b.WriteString(esc)
		plain = i + 1
	}
	b.WriteString(s[plain:])
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

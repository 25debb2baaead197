package sessions

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// The browsers on one computer: the sessions that counted from one address
// lately, for /count's two-browser exercise. No token, no user name.
const (
	// BrowsersWindow: a browser that has not counted for this long drops
	// off the list, and the address's keys expire between this long and
	// BrowsersExpiry after the last count.
	BrowsersWindow = 30 * time.Minute
	// BrowsersExpiry is the expiry a count gives the address's keys when
	// they have less than the window left: steady counts set it once a
	// minute, not every time.
	BrowsersExpiry = BrowsersWindow + time.Minute
	// MaxBrowsers bounds the list per address: a class behind one NAT
	// shares one, and it must not grow with the class.
	MaxBrowsers = 10
	// maxCounted bounds how many browsers of an address are counted
	// (BrowsersSeenKey), so a page can say how many it does not list.
	maxCounted = 1000
	// maxDevice bounds the device text stored per browser.
	maxDevice = 64
)

// Loopback stands for every loopback address (127.0.0.1, ::1): one
// computer, the one the app runs on, whatever name the browser used.
const Loopback = "loopback"

// BrowsersKey is the hash of the browsers seen from one client address.
func BrowsersKey(addr string) string { return "browsers:" + addr }

// BrowsersSeenKey is a sorted set of when each browser of an address last
// counted, to count those beyond the MaxBrowsers the hash keeps.
func BrowsersSeenKey(addr string) string { return "browsers:" + addr + ":seen" }

// BrowsersChannel is the pub/sub channel where every count from addr
// publishes the address's new list.
func BrowsersChannel(addr string) string { return "live:addr:" + addr }

// Browser is one session in an address's list.
type Browser struct {
	ID       string `json:"id"`     // session ID (a hash of the token); never shown
	Device   string `json:"device"` // "Firefox on Linux", from the User-Agent
	LoggedIn bool   `json:"logged_in"`
	Open     bool   `json:"open"` // a page of it is open: its live stream listens
	Views    int    `json:"views"`
	At       int64  `json:"at"` // unix ms of its last count
}

// BrowserList is an address's newest browsers (at most MaxBrowsers) and
// how many counted in the window, listed or not.
type BrowserList struct {
	Rows  []Browser
	Total int
	// Self is the ID of the session whose count returned the list
	// (IncrViews, NewBrowser), which they hash anyway: its row is the
	// page's own browser. "" for other lists.
	Self string
}

// CountedAt is when the browser last counted.
func (b Browser) CountedAt() time.Time { return time.UnixMilli(b.At).UTC() }

// Visit is who is counting: the client address (as -trusted-proxies
// resolves it), the device and whether the session is logged in.
type Visit struct {
	Addr     string
	Device   string
	LoggedIn bool
	Process  string // the serving process's short id (the lab's restart evidence)
	// Request is a trusted proxy's request id, the same on the proxy's
	// retries of one request, so IncrViews counts it once; "" for none.
	// Memory mode ignores it: no other process could count it first.
	Request string
}

// noteBrowser is the count scripts' Lua for an address's browsers. The
// sorted set holds when each browser last counted, so it orders the list
// and counts it; the hash holds the rows of the newest MaxBrowsers as JSON,
// so a list is their concatenation, never decoded. A browser has a page
// open if anyone listens on its session's channel (PUBSUB NUMSUB). The list
// is "<counted> [rows]". a: browserArgs.
//
// A count publishes only on channels that NUMSUB (which it asks anyway, for
// "open") says someone listens on: in one script nobody can subscribe
// between the two, so a PUBLISH it skips would have reached no one. Then it
// returns the list's parts for the app to join (joinParts): Lua copies,
// hashes and collects every string it makes, and joining was a sixth of a
// first count.
const noteBrowser = `
local format = string.format
-- numsub asks who listens on the channels of ids' sessions and, with
-- address true, last, on the address's channel.
local function numsub(ids, a, address)
  local chans = {}
  for i = 1, #ids do chans[i] = $SESSION_CHANNEL .. ids[i] end
  if address then chans[#ids+1] = a[3] end
  return redis.call('PUBSUB', 'NUMSUB', unpack(chans))
end
-- joined is the list of ids with their rows and n, numsub's answer, in
-- one string, not one per join. With parts, and more than one row (one
-- joins as cheaply here, and the app then makes no second string), it is
-- what the app joins instead: "<counted> <1 or 0 for each open or not>
-- <ids>", then each row on a line of its own; it takes rows.
local function joined(ids, rows, total, n, parts)
  if parts and #ids > 1 then
    local open = ''
    for i = 1, #ids do
      if not rows[i] then open = nil; break end
      open = open .. (n[2*i] > 0 and '1' or '0')
    end
    if open then
      table.insert(rows, 1, format('%d ', total) .. open .. ' ' .. table.concat(ids, ' '))
      return table.concat(rows, '\n')
    end
  end
  local out, sep = {format('%d [', total)}, '{"id":"'
  for i = 1, #ids do
    if rows[i] then
      out[#out+1] = sep .. ids[i] .. (n[2*i] > 0 and '","open":true,' or '","open":false,') .. string.sub(rows[i], 2)
      sep = ',{"id":"'
    end
  end
  out[#out+1] = ']'
  return table.concat(out)
end
local function list_browsers(key, seen, now, a, publish)
  local from = format('(%d', now - $WINDOW)
  local ids = redis.call('ZRANGE', seen, '+inf', from, 'BYSCORE', 'REV', 'LIMIT', '0', '$MAX')
  local total, rows = #ids, {}
  if total == $MAX then total = redis.call('ZCOUNT', seen, from, '+inf') end
  if #ids > 0 then rows = redis.call('HMGET', key, unpack(ids)) end
  local out = joined(ids, rows, total, #ids > 0 and numsub(ids, a, false) or {})
  if publish then redis.call('PUBLISH', a[3], $MSG_BROWSERS .. out) end
  return out
end
-- A count: this browser's row first, then the newest others; what falls
-- out of the list or the window leaves the hash when a row is added. With
-- count (a message for the session's channel) it is published first, then
-- the list, each only if listened to. It returns the list as published,
-- or, unpublished, its parts.
local function note_browser(key, seen, id, views, now, now_s, a, count)
  local max = $MAX
  local cut = format('%d', now - $WINDOW)
  local from = '(' .. cut
  local before = redis.call('ZRANGE', seen, '+inf', from, 'BYSCORE', 'REV', 'LIMIT', '0', '$MAX')
  local row = '{"device":' .. a[1] .. ',"logged_in":' .. a[2] .. ',"views":' .. views .. ',"at":' .. now_s .. '}'
  local added = redis.call('HSET', key, id, row) == 1
  local new = redis.call('ZADD', seen, now_s, id) == 1
  local ids, others, dropped = {id}, {}, nil
  for i = 1, #before do
    if before[i] ~= id then
      if #ids < max then ids[#ids+1] = before[i]; others[#others+1] = before[i] else dropped = before[i] end
    end
  end
  local total, expired = #ids, 0
  if new then expired = redis.call('ZREMRANGEBYSCORE', seen, '-inf', cut) end
  if #before == max then
    if new then
      total = redis.call('ZCARD', seen)
      local keep = $MAX_COUNTED
      if total > keep then
        redis.call('ZREMRANGEBYRANK', seen, '0', format('%d', -keep - 1))
        total = keep
      end
    else
      total = redis.call('ZCOUNT', seen, from, '+inf')
    end
  end
  -- Rows are only of the listed and of browsers that have since expired
  -- (and leave the set with the next new browser's count).
  if dropped then redis.call('HDEL', key, dropped) end
  if expired > 0 or (added and not new and redis.call('HLEN', key) > #ids) then
    local keep, gone = {}, {}
    for i = 1, #ids do keep[ids[i]] = true end
    for _, f in ipairs(redis.call('HKEYS', key)) do
      if not keep[f] then gone[#gone+1] = f end
    end
    if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
  end
  local rows, found = {row}, false
  if #others > 0 then
    local r = redis.call('HMGET', key, unpack(others))
    for i = 1, #others do rows[i+1] = r[i]; found = found or r[i] ~= false end
  end
  -- Both keys outlive the window after this count (BrowsersExpiry; PTTL
  -- answers a number, -1 for a set this count made). The hash this count
  -- made (its row new, no other's there) has no expiry either.
  if (added and not found) or redis.call('PTTL', seen) < $WINDOW then
    redis.call('PEXPIRE', key, '$EXPIRY')
    redis.call('PEXPIRE', seen, '$EXPIRY')
  end
  local n = numsub(ids, a, true)
  if count and n[2] > 0 then redis.call('PUBLISH', $SESSION_CHANNEL .. id, count) end
  if n[#n] == 0 then return joined(ids, rows, total, n, true) end
  local out = joined(ids, rows, total, n)
  redis.call('PUBLISH', a[3], $MSG_BROWSERS .. out)
  return out
end
-- now_ms is Redis's clock in ms, as a number and as digits (written
-- without formatting a number, which costs more than the rest).
local function now_ms()
  local t = redis.call('TIME')
  local us = t[2]
  local ms = #us > 3 and string.sub(us, 1, #us - 3) or ''
  local s = t[1] .. string.rep('0', 3 - #ms) .. ms
  return tonumber(s), s
end
-- An address's keys holding another type of value than the app writes (SET
-- over one with redis-cli) would fail every count from the address, after
-- the count was written, and every list: both are deleted and the call made
-- again, so the list starts afresh. Any other error is raised again. (No
-- TYPE: the documented ACL user need not have it.)
local function retrying(f)
  return function(key, seen, ...)
    local ok, out = pcall(f, key, seen, ...)
    if ok then return out end
    local m = type(out) == 'table' and out.err or tostring(out)
    if not string.find(m, 'WRONGTYPE', 1, true) then error(out, 0) end
    redis.call('DEL', key, seen)
    return f(key, seen, ...)
  end
end
list_browsers, note_browser = retrying(list_browsers), retrying(note_browser)
`

// browserArgs are the ARGV note_browser reads (its a): the device as
// JSON, true or false (logged in), the address's channel.
func browserArgs(v Visit) []string {
	return appendBrowserArgs(make([]string, 0, 3), v)
}

func appendBrowserArgs(args []string, v Visit) []string {
	logged := "false"
	if v.LoggedIn {
		logged = "true"
	}
	return append(args, jsonString(v.device()), logged, BrowsersChannel(v.Addr))
}

// device is the device text stored for the visit.
func (v Visit) device() string {
	if len(v.Device) > maxDevice {
		return v.Device[:maxDevice]
	}
	return v.Device
}

// scriptNames writes into the scripts' source the Go constants they use
// ($NAME): each keeps one home, as STYLE asks of names passed as ARGV, and
// a count sends a dozen fewer arguments (each cost Redis about 1.2k
// instructions to receive).
var scriptNames = strings.NewReplacer(
	"$WINDOW", strconv.FormatInt(BrowsersWindow.Milliseconds(), 10),
	"$EXPIRY", strconv.FormatInt(BrowsersExpiry.Milliseconds(), 10),
	"$COUNTED_FOR", strconv.FormatInt(CountedFor.Milliseconds(), 10),
	"$MAX_COUNTED", strconv.Itoa(maxCounted),
	"$MAX", strconv.Itoa(MaxBrowsers),
	"$MSG_BROWSERS", luaString(MsgBrowsersPrefix),
	"$MSG_COUNT", luaString(MsgCountPrefix),
	"$SESSION_CHANNEL", luaString(SessionChannelPrefix),
	"$KEY_VIEWS", luaString(KeyViews),
	"$KEY_ORIGIN", luaString(KeyOrigin),
	"$KEY_COUNTED", luaString(KeyCounted),
	"$KEY_LAB", luaString(KeyLab),
	"$JSON_VIEWS", luaString(jsonString(KeyViews)+":"),
	"$JSON_COUNTED", luaString(jsonString(KeyCounted)+":"),
	"$JSON_ORIGIN", luaString(jsonString(KeyOrigin)+":{"),
	"$JSON_SEEN_AT", luaString(jsonString(KeySeen)+`:"`),
)

// luaString is s as a Lua string literal; the constants above need no escape.
func luaString(s string) string {
	if strings.ContainsAny(s, `'\`+"\n") {
		panic("sessions: a script constant needs escaping: " + s)
	}
	return "'" + s + "'"
}

// cjsonString is s as a JSON string the way Redis's cjson writes it: '/'
// and DEL escaped too, and bytes from 0x80 (invalid UTF-8, U+2028) as they
// are, where encoding/json escapes '<', '>', '&' and U+2028 and replaces
// invalid UTF-8. A script looks for this process's JSON in what it wrote
// itself: a session another process counted last is rewritten by cjson.
func cjsonString(s string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 0, len(s)+2)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\', '/':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, `\b`...)
		case '\t':
			b = append(b, `\t`...)
		case '\n':
			b = append(b, `\n`...)
		case '\f':
			b = append(b, `\f`...)
		case '\r':
			b = append(b, `\r`...)
		default:
			if c < 0x20 || c == 0x7f {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return string(append(b, '"'))
}

// jsonString is s as a JSON string, for a script to write as it is.
func jsonString(s string) string {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	if plain { // as encoding/json writes it, without its reflection
		return `"` + s + `"`
	}
	b, err := json.Marshal(s)
	if err != nil { // invalid UTF-8 is replaced, never refused
		return `""`
	}
	return string(b)
}

// SortBrowsers puts the most recent count first, as the scripts' sorted
// set does (ZRANGE REV: equal times by ID, descending).
func SortBrowsers(list []Browser) {
	slices.SortFunc(list, func(x, y Browser) int {
		if c := cmp.Compare(y.At, x.At); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
}

// browserList: KEYS: hash, set; ARGV[1] a session whose page opened or
// closed ("": none), then browserArgs. It returns the list, publishing it
// when ARGV[1] is in it.
var browserList = redistrace.NewScript("browsers list", scriptNames.Replace(noteBrowser+`
local publish = ARGV[1] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
return list_browsers(KEYS[1], KEYS[2], now_ms(), {unpack(ARGV, 2)}, publish)`))

// Browsers reads an address's list, for a page that starts listening: what
// was published before never reached it.
func (o *Ops) Browsers(ctx context.Context, addr string) (BrowserList, error) {
	return o.PageChanged(ctx, "", addr)
}

// PageChanged reads an address's list like Browsers and, when token's
// session is in it, publishes it again: one of its pages opened or closed.
func (o *Ops) PageChanged(ctx context.Context, token, addr string) (BrowserList, error) {
	id := ""
	if token != "" {
		id = ID(token)
	}
	s, err := browserList.Exec(ctx, o.rdb, []string{BrowsersKey(addr), BrowsersSeenKey(addr)},
		append([]string{id}, browserArgs(Visit{Addr: addr})...)).ToString()
	if err != nil {
		return BrowserList{}, fmt.Errorf("sessions: browsers: %w", err)
	}
	return ParseBrowsers(s)
}

// ParseBrowsers reads a list as the scripts return and publish it: how
// many counted, a space, the list.
func ParseBrowsers(s string) (BrowserList, error) {
	n, rows, ok := strings.Cut(s, " ")
	total, err := strconv.Atoi(n)
	if !ok || err != nil {
		return BrowserList{}, fmt.Errorf("sessions: browsers: no count in %.20q", s)
	}
	var list []Browser
	if rows != "{}" { // cjson writes an empty table as an object
		var ok bool
		if list, ok = parsePlainBrowsers(rows); ok {
			return BrowserList{Rows: list, Total: max(total, len(list))}, nil
		}
		if err := json.Unmarshal([]byte(rows), &list); err != nil {
			return BrowserList{}, fmt.Errorf("sessions: browsers: %w", err)
		}
	}
	return BrowserList{Rows: list, Total: max(total, len(list))}, nil
}

// parseNoted reads the list a count returns: as published, or its parts
// (note_browser), read in place (parseParts) or, for a row that reader
// declines, joined first (joinParts).
func parseNoted(s string) (BrowserList, error) {
	if _, rest, ok := strings.Cut(s, " "); ok && !strings.HasPrefix(rest, "[") {
		if list, ok := parseParts(s); ok {
			return list, nil
		}
		list, err := joinParts(s)
		if err != nil {
			return BrowserList{}, fmt.Errorf("sessions: browsers: %w in %.40q", err, s)
		}
		s = list
	}
	return ParseBrowsers(s)
}

var errParts = errors.New("not a list's parts")

// plainID: id reads as itself in a JSON string (plainString's bytes).
func plainID(id string) bool {
	for i := range len(id) {
		if !plainByte[id[i]] {
			return false
		}
	}
	return id != ""
}

// parseParts reads a list's parts ("<counted> <open flags> <ids>", then a
// row a line) as joinParts and ParseBrowsers would, each row in place with
// its id and flag from the first line: the joined list, and the bytes the
// scanner copied of it, were two list-sized strings a count. ok false: a
// row written otherwise than by the scripts (by hand), for that path.
func parseParts(s string) (BrowserList, bool) {
	head, rows, _ := strings.Cut(s, "\n")
	counted, head, _ := strings.Cut(head, " ")
	open, ids, ok := strings.Cut(head, " ")
	total, err := strconv.Atoi(counted)
	if !ok || err != nil {
		return BrowserList{}, false
	}
	sc := scanner{b: []byte(rows), src: rows}
	list := make([]Browser, 0, MaxBrowsers)
	for i := range len(open) {
		var id string
		id, ids, _ = strings.Cut(ids, " ")
		end := strings.IndexByte(rows[sc.i:], '\n')
		if end < 0 {
			end = len(rows)
		} else {
			end += sc.i
		}
		b, seen, ok := sc.browserSeen()
		// A row's own "id" or "open" would follow the first line's in the
		// joined list, and encoding/json keeps the last; an empty row would
		// leave a comma before its '}'; an id with escapes is JSON's to read.
		if !ok || sc.i != end || seen[0] || seen[5] || seen == [6]bool{} || !plainID(id) || open[i] != '0' && open[i] != '1' {
			return BrowserList{}, false
		}
		b.ID, b.Open = id, open[i] == '1'
		list = append(list, b)
		if end < len(rows) {
			sc.i++ // the newline
		}
	}
	if ids != "" || sc.i != len(rows) {
		return BrowserList{}, false
	}
	return BrowserList{Rows: list, Total: max(total, len(list))}, true
}

// joinParts joins a list's parts as the scripts' joined does: each row
// after its id and whether it is open.
func joinParts(s string) (string, error) {
	head, rows, _ := strings.Cut(s, "\n")
	total, head, _ := strings.Cut(head, " ")
	open, ids, ok := strings.Cut(head, " ")
	if !ok {
		return "", errParts
	}
	var b strings.Builder
	b.Grow(len(s) + len(open)*32)
	b.WriteString(total)
	b.WriteString(" [")
	for i := range len(open) {
		var id, row string
		id, ids, _ = strings.Cut(ids, " ")
		row, rows, _ = strings.Cut(rows, "\n")
		if id == "" || row == "" || open[i] != '0' && open[i] != '1' {
			return "", errParts
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":"`)
		b.WriteString(id)
		if open[i] == '1' {
			b.WriteString(`","open":true,`)
		} else {
			b.WriteString(`","open":false,`)
		}
		b.WriteString(row[1:])
	}
	if ids != "" || rows != "" {
		return "", errParts
	}
	b.WriteByte(']')
	return b.String(), nil
}

// newBrowser, for a session about to be created: KEYS: hash, set, [new
// session counter], [the session]; ARGV: session ID, views, browserArgs,
// the counter's throttle.Step.Args or two empty strings, then the session's
// value and expiry (ms) or none. Past the limit nothing is written and it
// returns {ms to wait}. The session is written before its row: a write
// Redis refuses (OOM) leaves no row of a browser that has no session.
var newBrowser = redistrace.NewScript("note new browser", throttle.CountLimitLua+scriptNames.Replace(noteBrowser+`
local k = 3
if ARGV[6] ~= '' then
  local wait = count_limit(KEYS[k], ARGV[6], ARGV[7])
  if wait > 0 then return {wait} end
  k = k + 1
end
if ARGV[8] then redis.call('SET', KEYS[k], ARGV[8], 'PXAT', ARGV[9]) end
local now, now_s = now_ms()
return {0, note_browser(KEYS[1], KEYS[2], ARGV[1], ARGV[2], now, now_s, {unpack(ARGV, 3, 5)})}`))

// NewBrowser records the first count of a session not stored yet and returns
// the list; the same round trip counts it against limit (past it, nothing is
// recorded and wait says how long) and, with first (see WithCapture),
// writes the session, so that its save sends nothing.
func (o *Ops) NewBrowser(ctx context.Context, token string, views int, v Visit, limit throttle.Step, first *Written) (list BrowserList, wait time.Duration, err error) {
	id := ID(token)
	keys := append(make([]string, 0, 4), BrowsersKey(v.Addr), BrowsersSeenKey(v.Addr))
	args := append(append(make([]string, 0, 9), id, strconv.Itoa(views)), browserArgs(v)...)
	if limit.Key != "" {
		keys = append(keys, limit.Key)
		args = append(args, limit.Args()...)
	} else {
		args = append(args, "", "")
	}
	if first != nil {
		if first.Token != token || first.capture {
			return BrowserList{}, 0, errors.New("sessions: new browser: the session to write is another token's, or was never captured")
		}
		keys = append(keys, Key(token))
		args = append(args, string(first.Value), strconv.FormatInt(first.Expiry.UnixMilli(), 10))
	}
	res, err := newBrowser.Exec(ctx, o.rdb, keys, args).ToArray()
	if err != nil {
		return BrowserList{}, 0, fmt.Errorf("sessions: new browser: %w", err)
	}
	ms, err := res[0].AsInt64()
	if err != nil {
		return BrowserList{}, 0, fmt.Errorf("sessions: new browser: %w", err)
	}
	if ms > 0 {
		return BrowserList{}, time.Duration(ms) * time.Millisecond, nil
	}
	if len(res) != 2 {
		return BrowserList{}, 0, fmt.Errorf("sessions: new browser: %d values, want 2", len(res))
	}
	s, err := res[1].ToString()
	if err != nil {
		return BrowserList{}, 0, fmt.Errorf("sessions: new browser: %w", err)
	}
	list, err = parseNoted(s)
	list.Self = id
	return list, 0, err
}

// moveBrowser: KEYS: hash, set; ARGV: old session ID, new one, views,
// browserArgs. The row keeps when it last counted.
var moveBrowser = redistrace.NewScript("move browser", scriptNames.Replace(noteBrowser+`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local at = string.match(raw, '"at":(%d+)')
if not at then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
local a = {unpack(ARGV, 4)}
-- The new row first: a key emptied would be made again without its expiry.
redis.call('HSET', KEYS[1], ARGV[2], '{"device":' .. a[1] .. ',"logged_in":' .. a[2] .. ',"views":' .. ARGV[3] .. ',"at":' .. at .. '}')
redis.call('ZADD', KEYS[2], at, ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return list_browsers(KEYS[1], KEYS[2], now_ms(), a, true)`))

// dropBrowser: KEYS: hash, set; ARGV: session ID, the address's channel.
// No row, no change.
var dropBrowser = redistrace.NewScript("drop browser", scriptNames.Replace(noteBrowser+`
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return false end
redis.call('ZREM', KEYS[2], ARGV[1])
return list_browsers(KEYS[1], KEYS[2], now_ms(), {false, false, ARGV[2]}, true)`))

// DropBrowser takes an ended session's row (by its ID) off its address's list and
// publishes the list: a logged-out session is no browser of this computer,
// and its row would still say "logged in" (and give the lab a second
// browser that is this one).
func (o *Ops) DropBrowser(ctx context.Context, id, addr string) error {
	err := dropBrowser.Exec(ctx, o.rdb, []string{BrowsersKey(addr), BrowsersSeenKey(addr)},
		[]string{id, BrowsersChannel(addr)}).Error()
	if err != nil && !rueidis.IsRedisNil(err) {
		return fmt.Errorf("sessions: drop browser: %w", err)
	}
	return nil
}

// MoveBrowser gives a session's row to the token that renewed it (the browser
// is the same) and publishes the list; no row, no change.
func (o *Ops) MoveBrowser(ctx context.Context, oldToken, newToken string, views int, v Visit) error {
	err := moveBrowser.Exec(ctx, o.rdb, []string{BrowsersKey(v.Addr), BrowsersSeenKey(v.Addr)},
		append([]string{ID(oldToken), ID(newToken), strconv.Itoa(views)}, browserArgs(v)...)).Error()
	if err != nil && !rueidis.IsRedisNil(err) {
		return fmt.Errorf("sessions: move browser: %w", err)
	}
	return nil
}

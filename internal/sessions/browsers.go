package sessions

import (
	"cmp"
	"context"
	"encoding/json"
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
	// off the list, and the hash expires this long after the last count.
	BrowsersWindow = 30 * time.Minute
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
}

// noteBrowser is the count scripts' Lua that records a browser's count,
// trims and expires the address's hash and set, and publishes and returns
// "<counted> <list JSON>". A browser has a page open if anyone listens on
// its session's channel (PUBSUB NUMSUB). ARGV from browserArgs.
const noteBrowser = `
local function list_browsers(key, seen, now, a, publish)
  local window, max, channel, prefix, counted, sessions = tonumber(a[3]), tonumber(a[4]), a[5], a[6], tonumber(a[7]), a[8]
  redis.call('ZREMRANGEBYSCORE', seen, '-inf', now - window)
  redis.call('ZREMRANGEBYRANK', seen, 0, -counted - 1)
  local total = redis.call('ZCARD', seen)
  local all = redis.call('HGETALL', key)
  local list = {}
  for i = 1, #all, 2 do
    local ok, d = pcall(cjson.decode, all[i+1])
    if ok and type(d) == 'table' and now - (tonumber(d.at) or 0) < window then
      d.id = all[i]
      list[#list+1] = d
    else
      redis.call('HDEL', key, all[i])
    end
  end
  table.sort(list, function(x, y)
    if x.at ~= y.at then return x.at > y.at end
    return x.id < y.id
  end)
  for i = #list, max + 1, -1 do
    redis.call('HDEL', key, list[i].id)
    list[i] = nil
  end
  if #list > 0 then
    local chans = {}
    for i = 1, #list do chans[i] = sessions .. list[i].id end
    local n = redis.call('PUBSUB', 'NUMSUB', unpack(chans))
    for i = 1, #list do list[i].open = tonumber(n[2 * i]) > 0 end
  end
  redis.call('PEXPIRE', key, window)
  redis.call('PEXPIRE', seen, window)
  local out = total .. ' ' .. cjson.encode(list)
  if publish then redis.call('PUBLISH', channel, prefix .. out) end
  return out
end
local function note_browser(key, seen, id, views, now, a)
  redis.call('HSET', key, id, cjson.encode({device = a[1], logged_in = a[2] == '1', views = views, at = now}))
  redis.call('ZADD', seen, now, id)
  return list_browsers(key, seen, now, a, true)
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`

// browserArgs are the ARGV note_browser reads, starting at ARGV[first].
func browserArgs(v Visit) []string {
	device := v.Device
	if len(device) > maxDevice {
		device = device[:maxDevice]
	}
	logged := "0"
	if v.LoggedIn {
		logged = "1"
	}
	return []string{device, logged, strconv.FormatInt(BrowsersWindow.Milliseconds(), 10),
		strconv.Itoa(MaxBrowsers), BrowsersChannel(v.Addr), MsgBrowsersPrefix, strconv.Itoa(maxCounted), SessionChannelPrefix}
}

// SortBrowsers puts the most recent count first, as the scripts do.
func SortBrowsers(list []Browser) {
	slices.SortFunc(list, func(x, y Browser) int {
		if c := cmp.Compare(y.At, x.At); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
}

// browserList: KEYS: hash, set; ARGV[1] a session whose page opened or
// closed ("": none), then browserArgs. It returns the list, publishing it
// when ARGV[1] is in it.
var browserList = redistrace.NewScript("browsers list", noteBrowser+`
local publish = ARGV[1] ~= '' and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
return list_browsers(KEYS[1], KEYS[2], now_ms(), {unpack(ARGV, 2)}, publish)`)

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

// newBrowser, for a session about to be created: KEYS: hash, set, [new
// session counter]; ARGV: session ID, views, browserArgs, throttle.Step.Args.
// Past the limit nothing is written and it returns {ms to wait}.
var newBrowser = redistrace.NewScript("note new browser", throttle.CountLimitLua+noteBrowser+`
if KEYS[3] then
  local wait = count_limit(KEYS[3], ARGV[11], ARGV[12])
  if wait > 0 then return {wait} end
end
return {0, note_browser(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), now_ms(), {unpack(ARGV, 3, 10)})}`)

// NewBrowser records the first count of a session not stored yet and returns
// the list; the same round trip counts it against limit (past it, nothing is
// recorded and wait says how long).
func (o *Ops) NewBrowser(ctx context.Context, token string, views int, v Visit, limit throttle.Step) (list BrowserList, wait time.Duration, err error) {
	keys := []string{BrowsersKey(v.Addr), BrowsersSeenKey(v.Addr)}
	args := append([]string{ID(token), strconv.Itoa(views)}, browserArgs(v)...)
	if limit.Key != "" {
		keys = append(keys, limit.Key)
		args = append(args, limit.Args()...)
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
	list, err = ParseBrowsers(s)
	return list, 0, err
}

// moveBrowser: KEYS: hash, set; ARGV: old session ID, new one, views,
// browserArgs. The row keeps when it last counted.
var moveBrowser = redistrace.NewScript("move browser", noteBrowser+`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
local ok, d = pcall(cjson.decode, raw)
if not ok or type(d) ~= 'table' or not tonumber(d.at) then return false end
return note_browser(KEYS[1], KEYS[2], ARGV[2], tonumber(ARGV[3]), tonumber(d.at), {unpack(ARGV, 4)})`)

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

// Package sessions holds what sessionlab keeps about a session in Redis: the
// codec, the key names, and the atomic operations that change it in place.
package sessions

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// Prefix is the key prefix of stored sessions: sess:<token>, as in the tutorial.
const Prefix = "sess:"

// Key is the Redis key of a session token.
func Key(token string) string { return Prefix + token }

// Ops changes stored sessions atomically, with one round trip each, so
// concurrent requests of one session (on any instance) never lose an update.
type Ops struct {
	rdb rueidis.Client
	// Instance is recorded in the session index as the instance that last
	// served a session.
	Instance string
	// Log says when a user's index of another type is started again (nil:
	// slog's default).
	Log *slog.Logger

	unmoved atomic.Pointer[unmoved] // this process's unmovedArgs, made once
	// countedDenied: the ACL user may not touch CountedKey (said once).
	countedDenied atomic.Bool
}

// NewOps returns Ops over a rueidis client.
func NewOps(rdb rueidis.Client) *Ops { return &Ops{rdb: rdb} }

// ErrNoSession means the session's key is gone (expired, revoked, renewed).
var ErrNoSession = errors.New("sessions: no such session")

// ErrTokenRenewed is an ErrNoSession whose key another request's renewal
// took within RenewedFor (see TakeLive).
var ErrTokenRenewed = fmt.Errorf("%w: its token was renewed", ErrNoSession)

// encodeSession is the scripts' Lua that writes a session as Encode does
// where it matters: the deadline first and the count last, so the next
// count finds and replaces it without decoding the session.
const encodeSession = `
local function encode_session(s, kviews)
  local v = s.values[kviews]
  s.values[kviews] = nil
  local body = cjson.encode(s.values)
  if v ~= nil then
    body = (body == '{}' and '{' or string.sub(body, 1, -2) .. ',') .. '"' .. kviews .. '":' .. cjson.encode(v) .. '}'
  end
  return '{"deadline":' .. cjson.encode(s.deadline) .. ',"values":' .. body .. '}'
end
`

// countLua is the count scripts' shared part: count(raw, rid, counted).
var countLua = noteBrowser + noteMove + encodeSession + `
local find = string.find
local function unmoved(raw)
  if find(raw, $JSON_COUNTED, 1, true) then
    return find(raw, ARGV[4], 1, true) or find(raw, ARGV[5], 1, true)
  end
  local i = find(raw, $JSON_ORIGIN, 1, true)
  local j = i and find(raw, '}', i, true)
  local p, q = find(raw, ARGV[6], i or 1, true), find(raw, ARGV[7], i or 1, true)
  return j and p and q and p < j and q < j
end
-- count counts the session whose value is raw. With a proxy's request id
-- rid (and its CountedKey, counted), the proxy's retry of a count made
-- already gets that count, and nothing changes.
local function count(raw, rid, counted)
if counted then
  local last = redis.pcall('GET', counted)
  -- Another type (set by hand) is written over below; any other error
  -- stops the count before it writes. (An ACL user without the key never
  -- gets here: Redis refuses the script first, and IncrViews counts
  -- without it.)
  if type(last) == 'table' and not find(last.err, 'WRONGTYPE', 1, true) then error(last, 0) end
  local id = rid .. ' '
  local n = type(last) == 'string' and string.sub(last, 1, #id) == id and tonumber(string.sub(last, #id + 1))
  if n then return {n, list_browsers(KEYS[2], KEYS[3], (now_ms()), {unpack(ARGV, 8, 10)}), 'repeat'} end
end
local index = KEYS[4] ~= counted and KEYS[4]
-- Read before any write: an index of another type fails the script here,
-- having changed nothing, and Go starts the index again and counts (Ops).
-- A logged-in session with no entry gets '', which is no entry (below).
local e = index and (redis.call('HGET', index, ARGV[1]) or '')
local now, now_s = now_ms()
-- The count closes the session: "views":<digits>}}
local views = $JSON_VIEWS
local i = find(raw, views, #raw - #views - 15, true)
local n = i and string.sub(raw, i + #views, -3)
local v, vs, noted
if n and #n < 14 and find(n, '^%d+$') and string.sub(raw, -2) == '}}' and unmoved(raw) then
  v = tonumber(n) + 1
  vs = string.format('%d', v)
  -- Over the old number and past it: Redis copies no session, Lua makes
  -- none. A count with leading zeros is shorter, so the rest is written
  -- too; so is every count when the ACL user predates +setrange.
  local r = #vs >= #n and redis.pcall('SETRANGE', KEYS[1], i + #views - 1, vs .. '}}')
  if not r or type(r) == 'table' and r.err then
    redis.call('SET', KEYS[1], string.sub(raw, 1, i + #views - 1) .. vs .. '}}', 'KEEPTTL')
  end
else
  local s = cjson.decode(raw)
  v = (tonumber(s.values[$KEY_VIEWS]) or 0) + 1
  s.values[$KEY_VIEWS] = v
  local kind = note_move(s.values, v, ARGV[3], ARGV[2], now, $KEY_ORIGIN, $KEY_COUNTED, $KEY_LAB)
  -- The evidence recorded, as a Lab's JSON: the page this count answers
  -- shows the tick that /lab would.
  if kind then noted = cjson.encode({[kind] = s.values[$KEY_LAB][kind]}) end
  redis.call('SET', KEYS[1], encode_session(s, $KEY_VIEWS), 'KEEPTTL')
  vs = string.format('%d', v)
end
if counted then redis.call('SET', counted, rid .. ' ' .. vs, 'PX', '$COUNTED_FOR') end
local browsers = note_browser(KEYS[2], KEYS[3], ARGV[1], vs, now, now_s, {unpack(ARGV, 8)}, $MSG_COUNT .. vs)
if e then
  local at = find(e, '"last_seen":', 1, true)
  local seen = at and tonumber(string.match(e, '^%d+', at + 12))
  -- The address whose list holds the row (KEYS[2] is browsers:<address>),
  -- which a revoke clears: the entry's ip is the login's.
  local addr = string.sub(KEYS[2], 10)
  if not (seen and now - seen < 1000 and find(e, ARGV[7], 1, true) and find(e, '"counted_from":' .. cjson.encode(addr), 1, true)) then
    local ok, d = pcall(cjson.decode, e)
    -- An entry that is missing or not one (changed by hand) is left for
    -- Go to write again, which knows what a login writes in it.
    if not ok or type(d) ~= 'table' then return {v, browsers, 'entry', noted} end
    if d.instance ~= ARGV[2] or now - (tonumber(d.last_seen) or 0) >= 1000 or d.counted_from ~= addr then
      d.last_seen = now
      d.instance = ARGV[2]
      d.counted_from = addr
      redis.call('HSET', index, ARGV[1], cjson.encode(d))
    end
  end
end
if noted then return {v, browsers, '', noted} end
return {v, browsers}
end
`

// incrViews is the tutorial's `req.session.views = (req.session.views || 0) + 1`
// in one atomic step inside Redis (the expiry kept), so no update is lost; in
// the same round trip it publishes the count, notes the browser and the lab's
// evidence and, for a logged-in session, the index entry. A session whose
// count ends it and whose last counter (or creator) is this process only
// needs its count replaced (ARGV 4-7 are the JSON that shows it); any other
// is decoded. KEYS: session, browsers hash and zset, [user index], [the
// session's CountedKey]. ARGV: session ID, instance, process, unmovedArgs,
// browserArgs, [a trusted proxy's request id]. The reply is {count, list},
// then 'entry' (or ”) and the lab evidence noted, if any; a request id
// counted already answers {its count, list, 'repeat'}.
var incrViews = redistrace.NewScript("count", scriptNames.Replace(countLua+`
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
return count(raw, ARGV[11], ARGV[11] and KEYS[#KEYS])`))

// countChecked is incrViews for a count that comes before the session was
// loaded (Ops.CountChecked): in the same round trip it reads the session
// and counts only if the request would count with it, as loadAndSave
// decides once it has loaded it: the session holds the credential
// generation the account holds now, its last-seen time needs no touch and
// keeps it within the idle timeout, and its deadline is ahead. Otherwise
// it changes nothing and returns false. KEYS: incrViews's with the user's
// index, then the account, then the CountedKey. ARGV: incrViews's 1-10,
// the request id or an empty string, the generation as the session and the account
// write it ("gen":"…"), the username as the session writes it, the time
// "seen" must be after and the time the deadline must be after, both as
// sent (timeFormat). The reply is incrViews's, the session's value first.
var countChecked = redistrace.NewScript("count", scriptNames.Replace(countLua+`
local raw = redis.pcall('GET', KEYS[1])
if type(raw) ~= 'string' then return false end
-- stored_time is the time after prefix as the app's clock is sent
-- (timeFormat: milliseconds, three digits), so that the two compare as
-- strings: Go writes a time in the values with no trailing zeros
-- ("…:19.53Z"), the deadline and touch with three ("…:19.530Z").
local function stored_time(prefix, at)
  local i = find(raw, prefix, 1, true)
  if not i or (at and i ~= at) then return nil end
  local from = i + #prefix
  local j = find(raw, '"', from, true)
  if not j then return nil end
  local whole, frac = string.match(string.sub(raw, from, j - 1), '^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d)%.?(%d*)Z$')
  return whole and whole .. '.' .. string.sub(frac .. '000', 1, 3) .. 'Z'
end
local seen, deadline = stored_time($JSON_SEEN_AT), stored_time('{"deadline":"', 1)
if not (seen and seen > ARGV[14] and deadline and deadline > ARGV[15]) then return false end
if not (find(raw, ARGV[12], 1, true) and find(raw, ARGV[13], 1, true)) then return false end
local account = redis.pcall('GET', KEYS[5])
if type(account) ~= 'string' or not find(account, ARGV[12], 1, true) then return false end
local rid = ARGV[11] ~= '' and ARGV[11] or nil
local r = count(raw, rid, rid and KEYS[6])
table.insert(r, 1, raw)
return r`))

// unmovedArgs are the JSON by which the count script sees that the last
// count (or, with none, the session's start) was on this process: the
// counter as this process in either order, this process and this instance,
// spelled as the script's cjson writes them (the origin, which Go writes,
// differs only for an instance name cjson escapes otherwise: its session's
// first count then decodes it once).
func unmovedArgs(process, instance string) []string {
	p, i := `"process":`+cjsonString(process), `"instance":`+cjsonString(instance)
	counted := cjsonString(KeyCounted) + ":{"
	return []string{counted + p + "," + i + "}", counted + i + "," + p + "}", p, i}
}

type unmoved struct {
	process, instance string
	args              []string
}

// unmovedArgs are unmovedArgs for this process, made at its first count.
func (o *Ops) unmovedArgs(process string) []string {
	if u := o.unmoved.Load(); u != nil && u.process == process && u.instance == o.Instance {
		return u.args
	}
	u := &unmoved{process, o.Instance, unmovedArgs(process, o.Instance)}
	o.unmoved.Store(u)
	return u.args
}

// CountedFor is how long a session's CountedKey keeps the request id of its
// last count through a proxy. nginx sends a request to the next instance
// only while it has no answer, each try within proxy_read_timeout (75 s in
// docs/nginx-sessionlab.conf), so its third (proxy_next_upstream_tries 3)
// starts at most 150 s after the count it repeats.
const CountedFor = 3 * time.Minute

// IncrViews adds one view to a stored session and returns the new count and
// the browsers of the visit's address; user is "" for an anonymous session.
// A user's index of another type (changed by hand) is deleted and the count
// made again: the script failed on it before writing anything. A visit with
// a Request id that the session's last count had answers that count again,
// adding nothing (nginx's retry of a count whose instance died).
func (o *Ops) IncrViews(ctx context.Context, token, user string, v Visit) (n int, list BrowserList, noted Lab, err error) {
	id := ID(token)
	keys := []string{Key(token), BrowsersKey(v.Addr), BrowsersSeenKey(v.Addr)}
	if user != "" {
		keys = append(keys, IndexKey(user))
	}
	args := append(make([]string, 0, 10), id, o.Instance, v.Process)
	args = appendBrowserArgs(append(args, o.unmovedArgs(v.Process)...), v)
	if v.Request != "" {
		keys, args = append(keys, CountedKey(token)), append(args, v.Request)
	}
	res, err := incrViews.Exec(ctx, o.rdb, keys, args).ToArray()
	if v.Request != "" && isNoPerm(err) {
		// An ACL user set up before CountedKey existed: Redis refused the
		// script before it ran, so it is sent again without the check and
		// counts as before it existed (a proxy's retry may count twice).
		if !o.countedDenied.Swap(true) {
			cmp.Or(o.Log, slog.Default()).Warn("counts through the proxy are not checked for nginx's retries: the Redis ACL user lacks ~counted:* (docs/deploy.md)", "err", err)
		}
		keys, args = keys[:len(keys)-1], args[:len(args)-1]
		res, err = incrViews.Exec(ctx, o.rdb, keys, args).ToArray()
	}
	if user != "" && ResetRetyped(ctx, o.rdb, o.Log, err, IndexKey(user)) {
		res, err = incrViews.Exec(ctx, o.rdb, keys, args).ToArray()
	}
	if rueidis.IsRedisNil(err) {
		return 0, BrowserList{}, Lab{}, ErrNoSession
	}
	return parseCount(id, res, err)
}

// CountCheck is what a count sent before its session is loaded must find
// in the session (countChecked): the user and credential generation this
// process last saw in it, and the app's clock.
type CountCheck struct {
	User, Gen  string
	AccountKey string    // the user's account, which must hold Gen still
	SeenAfter  time.Time // "seen" must be later: no touch due, not idle
	Now        time.Time // the deadline must be later
}

// CheckedCount is a count CountChecked made: the session's value as the count
// found it, and what IncrViews would have returned.
type CheckedCount struct {
	Raw   []byte
	N     int
	List  BrowserList
	Noted Lab
	Err   error // the script was sent and may have run
}

// CountChecked counts as IncrViews does, in the round trip that reads the
// session, if the session is still what c says. ok false: nothing was
// counted (no session, a check failed, or Redis refused the script before
// running it), and the caller loads the session and counts as usual. ok
// with Counted.Err: the count was sent and may have run.
func (o *Ops) CountChecked(ctx context.Context, token string, c CountCheck, v Visit) (_ CheckedCount, ok bool) {
	if c.User == "" || c.Gen == "" {
		return CheckedCount{}, false
	}
	id := ID(token)
	keys := append(make([]string, 0, 6), Key(token), BrowsersKey(v.Addr), BrowsersSeenKey(v.Addr), IndexKey(c.User), c.AccountKey)
	args := append(make([]string, 0, 16), id, o.Instance, v.Process)
	args = appendBrowserArgs(append(args, o.unmovedArgs(v.Process)...), v)
	args = append(args, v.Request)
	if v.Request != "" {
		keys = append(keys, CountedKey(token))
	}
	args = append(args, `"gen":`+jsonString(c.Gen), `"username":`+jsonString(c.User),
		c.SeenAfter.UTC().Format(timeFormat), c.Now.UTC().Format(timeFormat))
	res, err := countChecked.Exec(ctx, o.rdb, keys, args).ToArray()
	switch {
	case rueidis.IsRedisNil(err), isNoPerm(err):
		return CheckedCount{}, false // nothing ran
	case ResetRetyped(ctx, o.rdb, o.Log, err, IndexKey(c.User)):
		return CheckedCount{}, false // the index's read failed before any write
	case err != nil:
		return CheckedCount{Err: fmt.Errorf("sessions: incr views: %w", err)}, true
	}
	if len(res) < 3 {
		return CheckedCount{Err: fmt.Errorf("sessions: incr views: %d values, want 3 to 5", len(res))}, true
	}
	raw, err := res[0].ToString()
	if err != nil {
		return CheckedCount{Err: fmt.Errorf("sessions: incr views: %w", err)}, true
	}
	n, list, noted, err := parseCount(id, res[1:], nil)
	return CheckedCount{Raw: []byte(raw), N: n, List: list, Noted: noted, Err: err}, true
}

// parseCount reads a count script's reply: {count, list}, then a flag and
// the lab's evidence noted, if any.
func parseCount(id string, res []rueidis.RedisMessage, err error) (n int, list BrowserList, noted Lab, _ error) {
	var flagged error
	if err == nil && len(res) >= 3 && len(res) <= 4 {
		switch flag, _ := res[2].ToString(); flag {
		case "entry":
			flagged = ErrEntryUnreadable
		case "repeat":
			flagged = ErrCountRepeated
		}
		if len(res) == 4 {
			var b string
			if b, err = res[3].ToString(); err == nil {
				err = json.Unmarshal([]byte(b), &noted)
			}
		}
		res = res[:2]
	}
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("%d values, want 2 to 4", len(res))
	}
	if err != nil {
		return 0, BrowserList{}, Lab{}, fmt.Errorf("sessions: incr views: %w", err)
	}
	c, err := res[0].AsInt64()
	if err != nil {
		return 0, BrowserList{}, Lab{}, fmt.Errorf("sessions: incr views: %w", err)
	}
	s, err := res[1].ToString()
	if err != nil {
		return 0, BrowserList{}, Lab{}, fmt.Errorf("sessions: incr views: %w", err)
	}
	list, err = parseNoted(s)
	list.Self = id
	if err == nil {
		err = flagged
	}
	return int(c), list, noted, err
}

// isNoPerm: Redis refused a command for the ACL user's permissions.
func isNoPerm(err error) bool {
	e, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(e.Error(), "NOPERM")
}

// ErrCountRepeated: nothing was counted, the request id had been counted
// already (a proxy sent the request again); the count is the one it made.
var ErrCountRepeated = errors.New("sessions: this request was counted already")

// ErrEntryUnreadable: the count counted, but the session's entry in its
// user's index is missing (the index deleted, or started again) or holds
// something that is not an entry (changed by hand with redis-cli), which
// the count left as it is: the caller writes it again.
var ErrEntryUnreadable = errors.New("sessions: the session's index entry is missing or not one this app wrote")

// touch records activity and moves the expiry without a rewrite: the time
// seen is replaced in place, the session decoded only when it has none.
// KEYS: session, [index]; ARGV: seen, expiry (ms), ID, seen (ms), instance,
// KeySeen, KeyViews.
var touch = redistrace.NewScript("touch", encodeSession+`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local i, j = string.find(raw, '"' .. ARGV[6] .. '":"[^"\\]*"')
if i then
  raw = string.sub(raw, 1, i + #ARGV[6] + 3) .. ARGV[1] .. string.sub(raw, j)
else
  local s = cjson.decode(raw)
  s.values[ARGV[6]] = ARGV[1]
  raw = encode_session(s, ARGV[7])
end
redis.call('SET', KEYS[1], raw, 'PXAT', ARGV[2])
if KEYS[2] then
  local e = redis.call('HGET', KEYS[2], ARGV[3])
  -- An entry that is not one (changed by hand) is the count's to write again.
  local ok, d = false, nil
  if e then ok, d = pcall(cjson.decode, e) end
  if ok and type(d) == 'table' then
    d.last_seen = tonumber(ARGV[4])
    d.instance = ARGV[5]
    redis.call('HSET', KEYS[2], ARGV[3], cjson.encode(d))
  end
end
return 1`)

// sessionKeys are the session's key and, with a user, that user's index.
func sessionKeys(token, user string) []string {
	if user == "" {
		return []string{Key(token)}
	}
	return []string{Key(token), IndexKey(user)}
}

// Touch sets the session's last-seen time and its key's expiry.
func (o *Ops) Touch(ctx context.Context, token, user string, seen, expiry time.Time) error {
	keys := sessionKeys(token, user)
	args := []string{seen.UTC().Format(timeFormat), strconv.FormatInt(expiry.UnixMilli(), 10),
		ID(token), strconv.FormatInt(seen.UnixMilli(), 10), o.Instance, KeySeen, KeyViews}
	n, err := touch.Exec(ctx, o.rdb, keys, args).AsInt64()
	if user != "" && ResetRetyped(ctx, o.rdb, o.Log, err, IndexKey(user)) {
		// The session was written before the index failed: the same write again.
		n, err = touch.Exec(ctx, o.rdb, keys, args).AsInt64()
	}
	if err != nil {
		return fmt.Errorf("sessions: touch: %w", err)
	}
	if n == 0 {
		return ErrNoSession
	}
	return nil
}

// take is GETDEL that also marks the token renewed with the count it carried
// and tells open pages it ended. KEYS: session, marker; ARGV: channel,
// MsgEnded, RenewedFor (ms), KeyViews, '1' for a login. A key already gone
// leaves the marker as it is, so a second login racing the first finds the
// first's count; a login marks it when there is none (it renews anyway),
// any other renewal does not (it gives up) and says whether one is there.
var take = redistrace.NewScript("take (GETDEL)", `
local v = redis.call('GETDEL', KEYS[1])
if not v then
  if ARGV[5] == '1' then
    redis.call('SET', KEYS[2], 0, 'PX', ARGV[3], 'NX')
  elseif redis.call('EXISTS', KEYS[2]) == 1 then
    return redis.status_reply('RENEWED')
  end
  return false
end
local ok, s = pcall(cjson.decode, v)
local n = 0
if ok and type(s) == 'table' and type(s.values) == 'table' then n = tonumber(s.values[ARGV[4]]) or 0 end
redis.call('SET', KEYS[2], n, 'PX', ARGV[3])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return v`)

// Take reads and deletes a stored session to renew its token, carrying every
// update up to that moment, and marks the token renewed in the same step, so
// no request finds the key gone and no marker.
func (o *Ops) Take(ctx context.Context, token string) (Taken, error) {
	return o.take(ctx, token, "1")
}

// TakeLive is Take for a renewal that is not a login (a password change, "log
// out everywhere else", a lab switch): a key already gone is not renewed, so
// it is not marked renewed, and the error says why it is gone:
// ErrTokenRenewed when another request renewed it, else ErrNoSession (ended).
func (o *Ops) TakeLive(ctx context.Context, token string) (Taken, error) {
	return o.take(ctx, token, "0")
}

func (o *Ops) take(ctx context.Context, token, login string) (Taken, error) {
	b, err := take.Exec(ctx, o.rdb, []string{Key(token), RenewedKey(token)},
		[]string{SessionChannel(ID(token)), MsgEnded, strconv.FormatInt(RenewedFor.Milliseconds(), 10), KeyViews, login}).AsBytes()
	if rueidis.IsRedisNil(err) {
		return Taken{}, ErrNoSession
	}
	if err != nil {
		return Taken{}, fmt.Errorf("sessions: take: %w", err)
	}
	if string(b) == "RENEWED" { // a stored session is JSON
		return Taken{}, ErrTokenRenewed
	}
	return taken(b), nil
}

// Times reads a stored session's deadline and last activity (one GET).
// A key gone, or holding nothing scs could load, is ErrNoSession.
func (o *Ops) Times(ctx context.Context, token string) (Times, error) {
	b, err := o.rdb.Do(ctx, o.rdb.B().Get().Key(Key(token)).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return Times{}, ErrNoSession
	}
	if err != nil {
		return Times{}, fmt.Errorf("sessions: times: %w", err)
	}
	return timesOfStored(b)
}

// LabChanged tells a session's open pages that its lab record changed: a
// page other than the one that noted it shows the record too.
func (o *Ops) LabChanged(ctx context.Context, token string) error {
	err := o.rdb.Do(ctx, o.rdb.B().Publish().Channel(SessionChannel(ID(token))).Message(MsgLab).Build()).Error()
	if err != nil {
		return fmt.Errorf("sessions: lab changed: %w", err)
	}
	return nil
}

// Ended tells a session's open pages that it has ended (a logout).
func (o *Ops) Ended(ctx context.Context, token string) error {
	err := o.rdb.Do(ctx, o.rdb.B().Publish().Channel(SessionChannel(ID(token))).Message(MsgEnded).Build()).Error()
	if err != nil {
		return fmt.Errorf("sessions: ended: %w", err)
	}
	return nil
}

// LogID is a short salted hash of a token: enough to follow one session
// through the logs, useless for taking it over.
type LogID []byte

// Of returns the log id of a token ("-" for none). A process makes its ids
// with Func, which does the salt's share of the work once.
func (salt LogID) Of(token string) string { return salt.Func()(token) }

// Func is Of for one salt: HMAC-SHA256 as crypto/hmac computes it
// (TestLogIDIsHMAC), with the two padded key blocks hashed once, so each id
// hashes two blocks (the token, the inner sum), not four. The two digests it
// clones are never written again, so ids may be made at once.
func (salt LogID) Func() func(token string) string {
	key := []byte(salt)
	if len(key) > sha256.BlockSize {
		sum := sha256.Sum256(key)
		key = sum[:]
	}
	var ipad, opad [sha256.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	inner, outer := sha256.New(), sha256.New()
	inner.Write(ipad[:])
	outer.Write(opad[:])
	return func(token string) string {
		if token == "" {
			return "-"
		}
		var sum [sha256.Size]byte
		var mac hash.Hash
		in, err1 := inner.(hash.Cloner).Clone()
		out, err2 := outer.(hash.Cloner).Clone()
		if err1 == nil && err2 == nil {
			io.WriteString(in, token)
			out.Write(in.Sum(sum[:0]))
			mac = out
		} else { // crypto/sha256's digest clones; in case it ever cannot
			mac = hmac.New(sha256.New, []byte(salt))
			io.WriteString(mac, token)
		}
		var id [12]byte
		hex.Encode(id[:], mac.Sum(sum[:0])[:6])
		return string(id[:])
	}
}

// IdleStore caps the expiry of every session write at now+idle, so Redis drops
// an idle session itself; scs's IdleTimeout would rewrite it on every request.
type IdleStore struct {
	scs.Store
	Idle time.Duration
}

// Commit implements scs.Store.
// A write is activity, so the key lives until EndsAt(now, expiry).
func (s IdleStore) Commit(token string, b []byte, expiry time.Time) error {
	return s.CommitCtx(context.Background(), token, b, expiry)
}

type idleKey struct{}

// WithIdle gives the session write made with ctx an idle timeout of d if
// shorter: a new anonymous session lives briefly without a second command.
func WithIdle(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, idleKey{}, d)
}

// A new session's first write can go in the script that counts it
// (Ops.NewBrowser), one round trip fewer: scs encodes a session only when it
// commits, after the handler, so the handler commits early with
// WithCapture, which sends nothing and keeps what would have been written;
// the script writes it; and the save's commit, given WithWritten, sends
// nothing when it would write the same bytes (and writes them otherwise).

// Written is a session value as the store writes it: Expiry is the key's,
// after the idle timeout's cap.
type Written struct {
	Token   string
	Value   []byte
	Expiry  time.Time
	capture bool
}

type writtenKey struct{}

// WithCapture makes the next commit made with ctx send nothing: it fills
// the Written returned, as the store would have written it.
func WithCapture(ctx context.Context) (context.Context, *Written) {
	w := &Written{capture: true}
	return context.WithValue(ctx, writtenKey{}, w), w
}

// WithWritten says that Redis holds w already (a script wrote it): a commit
// made with ctx of w's token and very bytes sends nothing.
func WithWritten(ctx context.Context, w *Written) context.Context {
	return context.WithValue(ctx, writtenKey{}, w)
}

type endedKey struct{}

// WithEnded says that the session's key was deleted already in this
// request (EndUnlessRenewed, Take): the store's delete, which scs's Destroy
// and RenewToken make, sends nothing more.
func WithEnded(ctx context.Context) context.Context {
	return context.WithValue(ctx, endedKey{}, true)
}

// The Ctx methods pass the request's context, and its Redis budget, on.

// CommitCtx implements scs.CtxStore. A write whose context carries a
// shorter idle timeout (WithIdle) gets that one.
func (s IdleStore) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	idle := s.Idle
	if d, ok := ctx.Value(idleKey{}).(time.Duration); ok && (idle <= 0 || d < idle) {
		idle = d
	}
	expiry = EndsAt(time.Now(), expiry, idle)
	if w, ok := ctx.Value(writtenKey{}).(*Written); ok {
		if w.capture {
			*w = Written{Token: token, Value: b, Expiry: expiry}
			return nil
		}
		if w.Token == token && bytes.Equal(w.Value, b) {
			return nil // Redis holds these very bytes, written with the same expiry rule
		}
	}
	if cs, ok := s.Store.(scs.CtxStore); ok {
		return cs.CommitCtx(ctx, token, b, expiry)
	}
	return s.Store.Commit(token, b, expiry)
}

// FindCtx implements scs.CtxStore. A key holding another type of value
// than a string (changed by hand with redis-cli) is ErrUnreadable, as a
// string that is not a session is.
func (s IdleStore) FindCtx(ctx context.Context, token string) (b []byte, found bool, err error) {
	if f, ok := ctx.Value(foundKey{}).(*foundValue); ok && f.token == token && f.used.CompareAndSwap(false, true) {
		return f.raw, true, nil
	}
	if cs, ok := s.Store.(scs.CtxStore); ok {
		b, found, err = cs.FindCtx(ctx, token)
	} else {
		b, found, err = s.Store.Find(token)
	}
	if IsWrongType(err) {
		err = fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	return b, found, err
}

type foundKey struct{}

type foundValue struct {
	token string
	raw   []byte
	used  atomic.Bool // once: a later read must see what Redis holds then
}

// WithFound makes the next FindCtx answer token with raw, the session's value read
// already this request (Ops.CountChecked), instead of reading it again.
func WithFound(ctx context.Context, token string, raw []byte) context.Context {
	return context.WithValue(ctx, foundKey{}, &foundValue{token: token, raw: raw})
}

// DeleteCtx implements scs.CtxStore.
func (s IdleStore) DeleteCtx(ctx context.Context, token string) error {
	if ended, _ := ctx.Value(endedKey{}).(bool); ended {
		return nil
	}
	if cs, ok := s.Store.(scs.CtxStore); ok {
		return cs.DeleteCtx(ctx, token)
	}
	return s.Store.Delete(token)
}

// Operations are the in-place session changes: Ops, or MemoryOps in memory.
type Operations interface {
	IncrViews(ctx context.Context, token, user string, v Visit) (int, BrowserList, Lab, error)
	NewBrowser(ctx context.Context, token string, views int, v Visit, limit throttle.Step, first *Written) (BrowserList, time.Duration, error)
	Browsers(ctx context.Context, addr string) (BrowserList, error)
	MoveBrowser(ctx context.Context, oldToken, newToken string, views int, v Visit) error
	DropBrowser(ctx context.Context, id, addr string) error
	PageChanged(ctx context.Context, token, addr string) (BrowserList, error)
	Touch(ctx context.Context, token, user string, seen, expiry time.Time) error
	Take(ctx context.Context, token string) (Taken, error)
	TakeLive(ctx context.Context, token string) (Taken, error)
	Times(ctx context.Context, token string) (Times, error)
	Renewed(ctx context.Context, token string) (views int, renewed bool, err error)
	RenewedInFlight(ctx context.Context, token string) (bool, error)
	KeepUnlessMoved(ctx context.Context, token string) (Kept, error)
	EndUnlessRenewed(ctx context.Context, token string) error
	MarkReplaced(ctx context.Context, token string) error
	Replaced(ctx context.Context, token string) (bool, error)
	MarkAccountUnreadable(ctx context.Context, token, accountKey string) error
	AccountUnreadable(ctx context.Context, token string) (accountKey string, err error)
	Ended(ctx context.Context, token string) error
	LabChanged(ctx context.Context, token string) error
	LabNote(ctx context.Context, token, field string, value any, replace bool) error
}

var (
	_ Operations = (*Ops)(nil)
	_ Operations = (*MemoryOps)(nil)
)

// Package sessionindex keeps each user's live sessions in one Redis hash, so
// listing them is one script call, never a scan. Ended entries are dropped on
// every read and write and the hash expires with its longest session.
package sessionindex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/redistrace"
	"github.com/sessionlab/sessionlab/internal/sessions"
)

// Entry is one session in a user's index.
type Entry struct {
	ID        string `json:"-"`
	Token     string `json:"token"`     // to delete the key on revoke; never shown
	Created   int64  `json:"created"`   // unix ms
	LastSeen  int64  `json:"last_seen"` // unix ms
	IP        string `json:"ip"`
	UserAgent string `json:"user_agent"`
	Instance  string `json:"instance"`
	// CountedFrom is the address whose browsers list last counted the
	// session (the count script writes it), which need not be IP's.
	CountedFrom string `json:"counted_from,omitempty"`
	Views       int    `json:"-"` // the session's count, read by List
	// Unreadable: List found the session's key holding no session (another
	// type, or a value edited by hand), so Views says nothing.
	Unreadable bool `json:"-"`
}

// CreatedAt and LastSeenAt are the entry's times as time.Time.
func (e Entry) CreatedAt() time.Time  { return time.UnixMilli(e.Created).UTC() }
func (e Entry) LastSeenAt() time.Time { return time.UnixMilli(e.LastSeen).UTC() }

// Index reads and writes the per-user session index.
type Index struct {
	rdb rueidis.Client
	// Log says when a user's index or revoked ids of another type are
	// started again (nil: slog's default).
	Log *slog.Logger
}

// exec runs one of the index's scripts. A user's index or revoked ids of
// another type than the hash the app writes (SET over it with redis-cli)
// fail every script before its first write: they are deleted (derived data,
// and a minute's memory of revokes: see sessions.ResetRetyped) and the
// script runs again. hashes are the KEYS that are such hashes.
func (x *Index) exec(ctx context.Context, s *redistrace.Script, keys []string, hashes int, args []string) redistrace.Reply {
	r := s.Exec(ctx, x.rdb, keys, args)
	if sessions.ResetRetyped(ctx, x.rdb, x.Log, r.Error(), keys[:hashes]...) {
		r = s.Exec(ctx, x.rdb, keys, args)
	}
	return r
}

// New returns an Index over a rueidis client.
func New(rdb rueidis.Client) *Index { return &Index{rdb: rdb} }

// Key is the Redis key holding user's index (see sessions.IndexKey).
func (x *Index) Key(user string) (string, bool) { return sessions.IndexKey(user), true }

// grace keeps a new entry whose session key is not written yet: login writes
// the entry, the key comes with the response.
const grace = 30 * time.Second

// prune drops entries whose session key is gone, except those written in the
// last grace (last_seen: created is the session's start, which a login keeps).
const prune = `
local function prune(idx, now, grace, keep, prefix)
  local all = redis.call('HGETALL', idx)
  local live = {}
  for i = 1, #all, 2 do
    local ok, e = pcall(cjson.decode, all[i+1])
    local gone = not ok or type(e) ~= 'table' or type(e.token) ~= 'string'
    if not gone and all[i] ~= keep and redis.call('EXISTS', prefix .. e.token) == 0
       and now - (tonumber(e.last_seen) or tonumber(e.created) or 0) > grace then
      gone = true
    end
    if gone then
      redis.call('HDEL', idx, all[i])
    else
      live[#live+1] = all[i]
      live[#live+1] = all[i+1]
    end
  end
  return live
end
`

// add: KEYS[1] index, KEYS[2] revoked ids; ARGV: id, entry JSON, old id,
// deadline, now, grace (ms), user channel, session key prefix,
// sessions.MsgSessions. It returns 0, adding nothing, when the old id was
// revoked a moment ago.
var add = redistrace.NewScript("index add", prune+`
if ARGV[3] ~= '' then
  if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return 0 end
  redis.call('HDEL', KEYS[1], ARGV[3])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
prune(KEYS[1], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[1], ARGV[8])
local at = redis.call('PEXPIRETIME', KEYS[1])
if at < tonumber(ARGV[4]) then redis.call('PEXPIREAT', KEYS[1], ARGV[4]) end
redis.call('PUBLISH', ARGV[7], ARGV[9])
return 1`)

// ErrRevoked: the session a new token replaces was revoked after the
// renewal took its key and before its entry was replaced (Add).
var ErrRevoked = errors.New("sessionindex: the session was revoked as it was renewed")

// revokedFor is how long a revoked id is remembered (RevokedKey): longer
// than any renewal takes from its key's GETDEL to its new entry.
const revokedFor = time.Minute

// Add records a new session of user, removing the entry of the token it
// replaces; the hash lives as long as its longest session. When that
// session was revoked a moment ago (between the renewal's GETDEL, which
// left the revoke no key to delete, and this), it adds nothing and says
// ErrRevoked, so the renewal does not carry a revoked session on.
func (x *Index) Add(ctx context.Context, user string, e Entry, oldID string, deadline time.Time) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("sessionindex: encode: %w", err)
	}
	n, err := x.exec(ctx, add, []string{sessions.IndexKey(user), sessions.RevokedKey(user)}, 2, []string{
		sessions.ID(e.Token), string(b), oldID,
		ms(deadline), ms(time.Now()), strconv.FormatInt(grace.Milliseconds(), 10),
		sessions.UserChannel(user), sessions.Prefix, sessions.MsgSessions,
	}).AsInt64()
	if err != nil {
		return fmt.Errorf("sessionindex: add for %q: %w", user, err)
	}
	if n == 0 {
		return ErrRevoked
	}
	return nil
}

// keepIfListed: KEYS[1] index, KEYS[2] the session's key, KEYS[3] the
// account; ARGV[1] the session's id, ARGV[2] its credential generation (empty:
// no user in it, nothing to compare).
var keepIfListed = redistrace.NewScript("keep if listed", `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  local ok, acct = pcall(cjson.decode, redis.call('GET', KEYS[3]) or '')
  if ARGV[2] == '' or ok and type(acct) == 'table' and acct.gen == ARGV[2] then return 1 end
  redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('DEL', KEYS[2])
return 0`)

// KeepIfListed runs after a renewed session's key is written: when a revoke
// removed its entry between Add and that write (another browser's "log out
// everywhere else" at the same moment), or the account's credential
// generation is no longer gen, the one the session holds (that other
// browser's change came after this request read the account, and its
// revoke before this entry), it deletes the key and the entry and says so,
// so no session stays live off its user's list, and none is kept that its
// next request would log out. gen "": the session no longer holds the user
// (a failure logged it out here), only the entry is checked. After it, a revoke finds the entry, or the key
// is gone.
func (x *Index) KeepIfListed(ctx context.Context, user, token, gen string) (bool, error) {
	n, err := x.exec(ctx, keepIfListed, []string{sessions.IndexKey(user), sessions.Key(token), accounts.Key(user)}, 1,
		[]string{sessions.ID(token), gen}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("sessionindex: check the entry for %q: %w", user, err)
	}
	return n == 1, nil
}

// list: KEYS[1] index; ARGV: now, grace (ms), session key prefix,
// sessions.KeyViews. It returns id, entry, views (from the session) per
// entry; views is "unreadable" for a key that holds no session (another
// type, or a value edited by hand), which must not fail the whole list.
var list = redistrace.NewScript("index list", prune+`
local live = prune(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), '', ARGV[3])
local out = {}
for i = 1, #live, 2 do
  local views = '0'
  local ok, e = pcall(cjson.decode, live[i+1])
  local raw = ok and redis.pcall('GET', ARGV[3] .. e.token)
  if type(raw) == 'table' then
    views = 'unreadable'
  elseif raw then
    local ok2, s = pcall(cjson.decode, raw)
    local v = ok2 and type(s) == 'table' and type(s.values) == 'table' and s.values[ARGV[4]]
    if v == nil or v == cjson.null then
      views = '0'
    elseif type(v) == 'number' and v == math.floor(v) and math.abs(v) < 2^63 then
      views = string.format('%.0f', v)
    else
      views = 'unreadable' -- not a session, or a count the app cannot read (the codec's int)
    end
  end
  out[#out+1] = live[i]
  out[#out+1] = live[i+1]
  out[#out+1] = views
end
return out`)

// List returns the user's live sessions, most recently seen first.
func (x *Index) List(ctx context.Context, user string) ([]Entry, error) {
	flat, err := x.exec(ctx, list, []string{sessions.IndexKey(user)}, 1,
		[]string{ms(time.Now()), strconv.FormatInt(grace.Milliseconds(), 10), sessions.Prefix, sessions.KeyViews}).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("sessionindex: list for %q: %w", user, err)
	}
	out := make([]Entry, 0, len(flat)/3)
	for i := 0; i+2 < len(flat); i += 3 {
		var e Entry
		if err := json.Unmarshal([]byte(flat[i+1]), &e); err != nil {
			continue
		}
		e.ID = flat[i]
		if flat[i+2] == "unreadable" {
			e.Unreadable = true
		} else {
			e.Views, _ = strconv.Atoi(flat[i+2])
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].LastSeen != out[j].LastSeen {
			return out[i].LastSeen > out[j].LastSeen
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// remove: KEYS[1] index; ARGV: id, user channel, sessions.MsgSessions.
var remove = redistrace.NewScript("index remove", `
local n = redis.call('HDEL', KEYS[1], ARGV[1])
if n > 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return n`)

// Remove drops a session from the index; the caller deletes its key.
func (x *Index) Remove(ctx context.Context, user, id string) error {
	err := x.exec(ctx, remove, []string{sessions.IndexKey(user)}, 1, []string{id, sessions.UserChannel(user), sessions.MsgSessions}).Error()
	if err != nil {
		return fmt.Errorf("sessionindex: remove for %q: %w", user, err)
	}
	return nil
}

// revoke deletes sessions, their entries and tells their tabs, and
// remembers the ids it removed (see Add). KEYS[1] index, KEYS[2] revoked
// ids; ARGV: user channel, key prefix, channel prefix, MsgEnded,
// MsgSessions, revokedFor (ms), then the ids, or '*' and the id to keep. It
// returns how many live sessions it ended, then the id and entry of each
// entry it removed.
var revoke = redistrace.NewScript("revoke", `
local ids = {}
if ARGV[7] == '*' then
  local all = redis.call('HKEYS', KEYS[1])
  for _, id in ipairs(all) do
    if id ~= ARGV[8] then ids[#ids+1] = id end
  end
else
  for i = 7, #ARGV do ids[#ids+1] = ARGV[i] end
end
local n = 0
local out = {''}
for _, id in ipairs(ids) do
  local raw = redis.call('HGET', KEYS[1], id)
  if raw then
    -- First: revoked ids of another type fail here, before any write (exec).
    redis.call('HSET', KEYS[2], id, '1')
    local ok, e = pcall(cjson.decode, raw)
    if ok and type(e) == 'table' and type(e.token) == 'string' then
      if redis.call('DEL', ARGV[2] .. e.token) > 0 then n = n + 1 end
    end
    redis.call('HDEL', KEYS[1], id)
    redis.call('PUBLISH', ARGV[3] .. id, ARGV[4])
    out[#out+1] = id
    out[#out+1] = raw
  end
end
if #out > 1 then redis.call('PEXPIRE', KEYS[2], ARGV[6]) end
-- Always after "log out everywhere else": it follows a new credential
-- generation, which the open pages of sessions missing from the list learn
-- of only from this. Otherwise only when an entry went: every open page of
-- the user reads Redis and reloads its list, which a revoke of an id not
-- listed (any id a client makes up) must not cost.
if #out > 1 or ARGV[7] == '*' then redis.call('PUBLISH', ARGV[1], ARGV[5]) end
out[1] = tostring(n)
return out`)

// Revoked is what a revoke did: how many live sessions it ended (a session
// whose key had expired is removed but not counted) and the index entries it
// removed, so the caller can clear what else names them.
type Revoked struct {
	Live    int
	Removed []Entry
}

func parseRevoked(flat []string) (Revoked, error) {
	if len(flat) == 0 || len(flat)%2 != 1 {
		return Revoked{}, fmt.Errorf("revoke answered %d values", len(flat))
	}
	live, err := strconv.Atoi(flat[0])
	if err != nil {
		return Revoked{}, fmt.Errorf("revoke answered %q for a count", flat[0])
	}
	r := Revoked{Live: live, Removed: make([]Entry, 0, len(flat)/2)}
	for i := 1; i+1 < len(flat); i += 2 {
		var e Entry
		_ = json.Unmarshal([]byte(flat[i+1]), &e) // an unreadable entry is still removed: its ID is enough
		e.ID = flat[i]
		r.Removed = append(r.Removed, e)
	}
	return r, nil
}

// Revoke deletes one of the user's sessions at once; an id that is not the
// user's does nothing.
func (x *Index) Revoke(ctx context.Context, user, id string) (Revoked, error) {
	if id == "" || id == "*" {
		return Revoked{}, nil
	}
	r, err := x.revoke(ctx, user, id)
	if err != nil {
		return Revoked{}, fmt.Errorf("sessionindex: revoke for %q: %w", user, err)
	}
	return r, nil
}

// RevokeOthers ends every session of the user except keepID.
func (x *Index) RevokeOthers(ctx context.Context, user, keepID string) (Revoked, error) {
	r, err := x.revoke(ctx, user, "*", keepID)
	if err != nil {
		return Revoked{}, fmt.Errorf("sessionindex: revoke others for %q: %w", user, err)
	}
	return r, nil
}

func (x *Index) revoke(ctx context.Context, user string, ids ...string) (Revoked, error) {
	args := append([]string{sessions.UserChannel(user), sessions.Prefix, sessions.SessionChannelPrefix,
		sessions.MsgEnded, sessions.MsgSessions, strconv.FormatInt(revokedFor.Milliseconds(), 10)}, ids...)
	flat, err := x.exec(ctx, revoke, []string{sessions.IndexKey(user), sessions.RevokedKey(user)}, 2, args).AsStrSlice()
	if err != nil {
		return Revoked{}, err
	}
	return parseRevoked(flat)
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

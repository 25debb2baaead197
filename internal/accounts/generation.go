package accounts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// An account's credential generation changes when its other sessions must
// end; every request compares its session's, so none escapes (Django's
// session auth hash, random so that no new password is needed).

// newGen is a fresh credential generation.
func newGen() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// setGen writes fields into an account in place (KEEPTTL). KEYS: account,
// CostsKey; ARGV: generation, new hash or "", its cost. 0: no account.
var setGen = redistrace.NewScript("set generation", countCost+`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local a = cjson.decode(raw)
a.gen = ARGV[1]
if ARGV[2] ~= '' then
  local old = tonumber(string.sub(a.hash or '', 5, 6))
  if old then count_cost(tostring(old), -1) end
  count_cost(ARGV[3], 1)
  a.hash = ARGV[2]
end
redis.call('SET', KEYS[1], cjson.encode(a), 'KEEPTTL')
return 1`)

// NewGeneration gives the account a new credential generation, logging out
// every older session on its next request (ErrBadCredentials: no account).
func (s *Store) NewGeneration(ctx context.Context, username string) (string, error) {
	gen := newGen()
	n, err := setGen.Exec(ctx, s.rdb, []string{Key(username), CostsKey}, []string{gen, "", ""}).AsInt64()
	if err != nil {
		return "", fmt.Errorf("accounts: new generation for %q: %w", username, err)
	}
	if n == 0 {
		return "", ErrBadCredentials
	}
	return gen, nil
}

// cacheFor bounds how long this process trusts its cached account: only a
// backstop, as Redis invalidates the copies when the account changes.
const cacheFor = time.Minute

// Current reports whether gen is still the account's credential generation,
// through the client-side cache; the cache can trail this process's own
// change, so a mismatch is read again from Redis before it ends a session.
func (s *Store) Current(ctx context.Context, username, gen string) (bool, error) {
	cached, found, err := s.generation(ctx, username, true)
	if err != nil || found && cached == gen {
		return err == nil, err
	}
	return s.CurrentInRedis(ctx, username, gen)
}

// CurrentInRedis is Current read from Redis, past the cache: for a caller
// told by a message that the generation changed, as the cache's invalidation
// comes on another connection and may not have arrived yet.
func (s *Store) CurrentInRedis(ctx context.Context, username, gen string) (bool, error) {
	now, found, err := s.generation(ctx, username, false)
	return err == nil && found && now == gen, err
}

// generation reads the account's credential generation, through the cache
// or not; found is false when there is no account.
func (s *Store) generation(ctx context.Context, username string, cached bool) (gen string, found bool, err error) {
	var res rueidis.RedisResult
	if cached {
		res = s.rdb.DoCache(ctx, s.rdb.B().Get().Key(Key(username)).Cache(), cacheFor)
	} else {
		res = s.rdb.Do(ctx, s.rdb.B().Get().Key(Key(username)).Build())
	}
	raw, err := res.ToString()
	if rueidis.IsRedisNil(err) {
		return "", false, nil
	}
	if unreadable(err) {
		return "", false, fmt.Errorf("accounts: generation of %q: %w (%v)", username, ErrUnreadable, err)
	}
	if err != nil {
		return "", false, fmt.Errorf("accounts: generation of %q: %w", username, err)
	}
	if g, ok := s.gens.Load(username); ok && g.(decodedGen).raw == raw {
		return g.(decodedGen).gen, true, nil
	}
	var a struct {
		Gen string `json:"gen"`
	}
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return "", false, fmt.Errorf("accounts: decode %q: %w (%v)", username, ErrUnreadable, err)
	}
	if s.gensStored.Add(1) > maxDecodedGens {
		s.gens.Clear()
		s.gensStored.Store(0)
	}
	s.gens.Store(username, decodedGen{raw: raw, gen: a.Gen})
	return a.Gen, true, nil
}

// decodedGen caches a decoded generation by its bytes: decoding was most of
// the per-request check's cost.
type decodedGen struct{ raw, gen string }

// maxDecodedGens bounds the accounts remembered; past it they are all
// forgotten and decoded again as they come.
const maxDecodedGens = 10_000

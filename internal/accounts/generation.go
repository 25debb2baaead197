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

// An account's credential generation (Account.Gen) changes whenever its
// other sessions must end (a password change, "log out everywhere else").
// Sessions carry the generation they logged in with and every request
// compares: no list of sessions to walk, so none escapes. Django's session
// auth hash, with a random value so no new password is needed.

// newGen is a fresh credential generation.
func newGen() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// setGen writes fields into an account in place, keeping everything else
// (and the key's TTL): KEYS: the account, CostsKey; ARGV: new generation,
// then a new hash or "" to keep the hash, then the new hash's cost (the
// counts in CostsKey follow). Returns 0 when there is no account.
var setGen = redistrace.NewScript("set generation", `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local a = cjson.decode(raw)
a.gen = ARGV[1]
if ARGV[2] ~= '' then
  local old = tonumber(string.sub(a.hash or '', 5, 6))
  if old then redis.call('HINCRBY', KEYS[2], tostring(old), -1) end
  redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
  a.hash = ARGV[2]
end
redis.call('SET', KEYS[1], cjson.encode(a), 'KEEPTTL')
return 1`)

// NewGeneration gives the account a new credential generation, so every
// session logged in before is logged out on its next request. It returns
// the new generation, for the session that asked to keep. ErrBadCredentials:
// no such account.
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

// cacheFor bounds how long this process trusts its copy of an account. Redis
// tells every client that cached a key when it changes (client-side caching,
// RESP3 tracking), and a lost connection drops the whole cache, so this is
// only a backstop: what ends a revoked session quickly is the invalidation.
const cacheFor = time.Minute

// Current reports whether gen is still the account's credential generation
// (false when the account is gone), on every logged-in request, through the
// client-side cache. The cache can trail this process's own change (the
// invalidation comes on another connection), so a mismatch is read again
// from Redis before it ends a session.
func (s *Store) Current(ctx context.Context, username, gen string) (bool, error) {
	cached, found, err := s.generation(ctx, username, true)
	if err != nil || found && cached == gen {
		return err == nil, err
	}
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
		return "", false, fmt.Errorf("accounts: decode %q: %w", username, err)
	}
	if s.gensStored.Add(1) > maxDecodedGens {
		s.gens.Clear()
		s.gensStored.Store(0)
	}
	s.gens.Store(username, decodedGen{raw: raw, gen: a.Gen})
	return a.Gen, true, nil
}

// decodedGen is an account's generation as last decoded from its stored
// bytes: decoding was most of the per-request check's cost, so it is done
// again only when the bytes differ.
type decodedGen struct{ raw, gen string }

// maxDecodedGens bounds the accounts remembered; past it they are all
// forgotten and decoded again as they come.
const maxDecodedGens = 10_000

package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// A login takes as long whether or not the name exists, whatever its hash's
// cost: every check spends one comparison at the highest cost in use, padding
// a cost-c comparison with dummies at c..top-1 (their sum is 2^top).

// CostsKey is a hash from bcrypt cost to how many stored password hashes
// have it.
const CostsKey = "accounts:costs"

// dummies are hashes of no real password, by cost, made on first use.
type dummies struct {
	mu sync.Mutex
	by map[int][]byte
}

func (d *dummies) at(cost int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, ok := d.by[cost]; ok {
		return h
	}
	h, err := bcrypt.GenerateFromPassword([]byte("not-a-real-password"), cost)
	if err != nil {
		panic(fmt.Sprintf("accounts: bcrypt cost %d: %v", cost, err))
	}
	if d.by == nil {
		d.by = map[int][]byte{}
	}
	d.by[cost] = h
	return h
}

// costOf is a stored hash's bcrypt cost (0 when it is not a bcrypt hash).
func costOf(hash string) int {
	c, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return 0
	}
	return c
}

// topCost is the highest cost of any stored hash, at least the current one;
// a missing CostsKey is counted first (accounts made before it existed), and
// so is one that cannot be read (a hand edit: another type, a count that is
// no number), which would otherwise fail every login until someone fixed it.
func (s *Store) topCost(ctx context.Context) (int, error) {
	m, err := s.rdb.DoCache(ctx, s.rdb.B().Hgetall().Key(CostsKey).Cache(), cacheFor).AsIntMap()
	if numErr := (*strconv.NumError)(nil); unreadable(err) || errors.As(err, &numErr) {
		if s.Log != nil {
			s.Log.WarnContext(ctx, "bcrypt cost counts cannot be read: counted again from the accounts", "key", CostsKey, "err", err)
		}
		m, err = nil, s.rdb.Do(ctx, s.rdb.B().Del().Key(CostsKey).Build()).Error()
	}
	if err != nil {
		return 0, fmt.Errorf("accounts: read hash costs: %w", err)
	}
	if len(m) == 0 {
		if m, err = s.countCosts(ctx); err != nil {
			return 0, err
		}
	}
	top := s.cost
	for k, n := range m {
		if c, err := strconv.Atoi(k); err == nil && n > 0 && c > top && c <= bcrypt.MaxCost {
			top = c
		}
	}
	return top, nil
}

// countCost is the scripts' HINCRBY of a cost's count (KEYS[2] is CostsKey):
// counts a hand edit made unreadable are deleted instead, for topCost to
// count again, so the script's other writes (a new account) stand and the
// request does not fail after making them.
const countCost = `
local function count_cost(cost, by)
  if not pcall(redis.call, 'HINCRBY', KEYS[2], cost, by) then redis.call('DEL', KEYS[2]) end
end
`

// writeCounts writes the counts unless another process already has.
var writeCounts = redistrace.NewScript("cost counts", `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
return 1`)

// countCosts counts the stored hashes by cost into CostsKey, once.
func (s *Store) countCosts(ctx context.Context) (map[string]int64, error) {
	counts := map[string]int64{}
	var cursor uint64
	for {
		e, err := s.rdb.Do(ctx, s.rdb.B().Scan().Cursor(cursor).Match(Key("*")).Count(500).Build()).AsScanEntry()
		if err != nil {
			return nil, fmt.Errorf("accounts: count hash costs: %w", err)
		}
		for _, key := range e.Elements {
			b, err := s.rdb.Do(ctx, s.rdb.B().Get().Key(key).Build()).AsBytes()
			var a Account
			if err != nil || json.Unmarshal(b, &a) != nil {
				continue
			}
			if c := costOf(a.Hash); c > 0 {
				counts[strconv.Itoa(c)]++
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			break
		}
	}
	if len(counts) == 0 {
		counts[strconv.Itoa(s.cost)] = 0 // nothing stored yet: the key says so
	}
	args := make([]string, 0, 2*len(counts))
	for k, n := range counts {
		args = append(args, k, strconv.FormatInt(n, 10))
	}
	if err := writeCounts.Exec(ctx, s.rdb, []string{CostsKey}, args).Error(); err != nil {
		return nil, fmt.Errorf("accounts: count hash costs: %w", err)
	}
	return counts, nil
}

// compare checks password against hash, spending what one comparison at
// cost top takes whatever the hash's own cost.
func (s *Store) compare(hash string, password []byte, top int) error {
	err := bcrypt.CompareHashAndPassword([]byte(hash), password)
	for c := max(costOf(hash), bcrypt.MinCost); c < top; c++ {
		_ = bcrypt.CompareHashAndPassword(s.dummies.at(c), password)
	}
	return err
}

// rehash replaces a checked hash with one at the current cost, unless the
// account changed meanwhile. KEYS: account, CostsKey; ARGV: old hash, new
// hash, old cost, new cost.
var rehash = redistrace.NewScript("rehash", countCost+`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local a = cjson.decode(raw)
if a.hash ~= ARGV[1] then return 0 end
a.hash = ARGV[2]
redis.call('SET', KEYS[1], cjson.encode(a), 'KEEPTTL')
count_cost(ARGV[3], -1)
count_cost(ARGV[4], 1)
return 1`)

// upgrade rehashes a's password at the current cost if its hash has
// another one. The login goes on if this fails: the next one tries again.
func (s *Store) upgrade(ctx context.Context, a Account, password string) error {
	old := costOf(a.Hash)
	if old == s.cost {
		return nil
	}
	hash, err := s.hash(ctx, password) // busy: the next login tries again
	if err != nil {
		return fmt.Errorf("accounts: rehash %q: %w", a.Username, err)
	}
	err = rehash.Exec(ctx, s.rdb, []string{Key(a.Username), CostsKey},
		[]string{a.Hash, string(hash), strconv.Itoa(old), strconv.Itoa(s.cost)}).Error()
	if err != nil {
		return fmt.Errorf("accounts: rehash %q: %w", a.Username, err)
	}
	return nil
}

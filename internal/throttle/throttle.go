// Package throttle slows down password guessing: it counts failed logins in
// Redis per client address, per account and per (account, address) pair, in
// fixed windows, and says how long a client must wait once a limit is reached.
//
// The policy, and why:
//
//   - Pair (one account from one address): a small limit. It stops a single
//     guesser cold and is cleared by a successful login, so the owner who
//     mistyped a few times is not held up afterwards.
//
//   - Address (one address, all accounts): a larger limit against password
//     spraying and credential stuffing from one machine. IPv6 addresses are
//     counted per /64, the block one subscriber usually gets.
//
//   - Account (one account, all addresses): a short window against a guesser
//     spread over many addresses. It applies only to addresses the account
//     has not logged in from recently ("known" addresses), so an attacker
//     hammering an account from a botnet slows the botnet, not the owner at
//     home; an owner on a new address waits at most one window after the
//     attack stops.
//
//   - Sign-ups (account creations from one address): each costs a bcrypt
//     hash, deliberately slow, so one client must not be able to spend the
//     server's CPU on it, or probe at will which names are taken. The limit
//     is generous because a whole class may sign up from behind one school
//     NAT.
//
// Every attempt is counted before the password is checked, in one atomic
// script (one round trip), and given back when it succeeds: so parallel
// guesses cannot slip past a limit, and a blocked client learns nothing about
// the password, because a blocked attempt is never checked.
package throttle

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// Limit is at most Max failures per fixed Window.
type Limit struct {
	Max    int
	Window time.Duration
}

// Policy is the set of limits a login is checked against.
type Policy struct {
	Pair    Limit         // one account from one address
	Address Limit         // one address, any account
	Account Limit         // one account, from addresses not known for it
	Known   time.Duration // how long a successful login makes an address known for the account
	Signup  Limit         // account creations from one address; Max 0: no limit
}

// DefaultPolicy: 5 failures per pair per 5 minutes, 100 per address per 15
// minutes, 20 per account (from unknown addresses) per 5 minutes; an address
// stays known for 30 days after a successful login; 50 sign-ups per address
// per hour.
var DefaultPolicy = Policy{
	Pair:    Limit{Max: 5, Window: 5 * time.Minute},
	Address: Limit{Max: 100, Window: 15 * time.Minute},
	Account: Limit{Max: 20, Window: 5 * time.Minute},
	Known:   30 * 24 * time.Hour,
	Signup:  Limit{Max: 50, Window: time.Hour},
}

// Kind names one of the throttle's keys.
type Kind string

// The keys the throttle keeps; see Key.
const (
	KindAddress Kind = "addr"
	KindPair    Kind = "pair"
	KindAccount Kind = "account"
	KindKnown   Kind = "known"
	KindSignup  Kind = "signup"
)

// Key is the Redis key of one counter (a string holding an integer, with a
// TTL that ends its window) or of a "known address" mark:
//
//	login:fail:addr:<address>            failures from an address (IPv6: its /64)
//	login:fail:pair:<account>:<address>  failures for an account from an address
//	login:fail:account:<account>         failures for an account from addresses not known for it
//	login:known:<account>:<address>      the account logged in from this address lately
//	signup:addr:<address>                accounts created from an address
//
// account is a normalized username (it never contains ':').
func Key(kind Kind, account string, addr netip.Addr) string {
	switch kind {
	case KindAddress:
		return "login:fail:addr:" + Subject(addr)
	case KindPair:
		return "login:fail:pair:" + account + ":" + Subject(addr)
	case KindAccount:
		return "login:fail:account:" + account
	case KindSignup:
		return "signup:addr:" + Subject(addr)
	default:
		return "login:known:" + account + ":" + Subject(addr)
	}
}

// Subject is how an address is counted: IPv4 as is, IPv6 by its /64.
func Subject(addr netip.Addr) string {
	addr = addr.Unmap()
	switch {
	case !addr.IsValid():
		return "unknown"
	case addr.Is4():
		return addr.String()
	default:
		return netip.PrefixFrom(addr.WithZone(""), 64).Masked().String()
	}
}

// Throttle counts login failures in Redis.
type Throttle struct {
	rdb    rueidis.Client
	policy Policy
}

// New returns a Throttle enforcing policy.
func New(rdb rueidis.Client, policy Policy) *Throttle {
	return &Throttle{rdb: rdb, policy: policy}
}

// attempt checks every limit and, if none is reached, counts the attempt
// against all of them. It returns 0, or the milliseconds until the latest
// ending window of the limits reached. A counter that somehow lost its TTL
// gets one again, so nothing blocks forever.
var attempt = rueidis.NewLuaScript(`
local function wait(key, max, window)
  local n = tonumber(redis.call('GET', key) or '0') or 0
  if n < tonumber(max) then return 0 end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, window)
    ttl = tonumber(window)
  end
  return ttl
end
local function count(key, window)
  redis.call('INCR', key)
  redis.call('PEXPIRE', key, window, 'NX')
end
local withAccount = #KEYS == 4
local unknown = withAccount and redis.call('EXISTS', KEYS[4]) == 0
local w = wait(KEYS[1], ARGV[1], ARGV[2])
if withAccount then
  w = math.max(w, wait(KEYS[2], ARGV[3], ARGV[4]))
  if unknown then w = math.max(w, wait(KEYS[3], ARGV[5], ARGV[6])) end
end
if w > 0 then return w end
count(KEYS[1], ARGV[2])
if withAccount then
  count(KEYS[2], ARGV[4])
  if unknown then count(KEYS[3], ARGV[6]) end
end
return 0`)

// succeeded gives a successful attempt back, clears the pair and marks the
// address known for the account.
var succeeded = rueidis.NewLuaScript(`
local function giveBack(key)
  local n = tonumber(redis.call('GET', key) or '0') or 0
  if n > 0 then redis.call('DECR', key) end
end
giveBack(KEYS[1])
if redis.call('EXISTS', KEYS[4]) == 0 then giveBack(KEYS[3]) end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[4], '1', 'PX', ARGV[1])
return 1`)

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func (t *Throttle) keys(account string, addr netip.Addr) []string {
	keys := []string{Key(KindAddress, "", addr)}
	if account != "" {
		keys = append(keys, Key(KindPair, account, addr), Key(KindAccount, account, addr), Key(KindKnown, account, addr))
	}
	return keys
}

// Attempt counts a login attempt for account (a normalized username, or ""
// when the name cannot be an account) from addr, before its password is
// checked. It returns 0 when the attempt may go ahead, or how long the client
// must wait; a blocked attempt is not counted.
func (t *Throttle) Attempt(ctx context.Context, account string, addr netip.Addr) (time.Duration, error) {
	p := t.policy
	args := []string{
		strconv.Itoa(p.Address.Max), ms(p.Address.Window),
		strconv.Itoa(p.Pair.Max), ms(p.Pair.Window),
		strconv.Itoa(p.Account.Max), ms(p.Account.Window),
	}
	n, err := attempt.Exec(ctx, t.rdb, t.keys(account, addr), args).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("throttle: attempt: %w", err)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// Succeeded gives back the attempt of a successful login, clears the
// account's failures from addr and makes addr known for the account.
func (t *Throttle) Succeeded(ctx context.Context, account string, addr netip.Addr) error {
	if account == "" {
		return nil
	}
	err := succeeded.Exec(ctx, t.rdb, t.keys(account, addr), []string{ms(t.policy.Known)}).Error()
	if err != nil {
		return fmt.Errorf("throttle: succeeded: %w", err)
	}
	return nil
}

// Signup counts an account creation from addr, before its password is
// hashed. It returns 0 when it may go ahead, or how long the client must
// wait; a blocked sign-up is not counted. It uses the attempt script with
// the address limit alone.
func (t *Throttle) Signup(ctx context.Context, addr netip.Addr) (time.Duration, error) {
	l := t.policy.Signup
	if l.Max <= 0 {
		return 0, nil
	}
	n, err := attempt.Exec(ctx, t.rdb, []string{Key(KindSignup, "", addr)},
		[]string{strconv.Itoa(l.Max), ms(l.Window)}).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("throttle: sign-up: %w", err)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// Package throttle slows down password guessing: it counts failed logins in
// Redis in fixed windows and says how long a client must wait at a limit.
// Only a checked, wrong password counts, so an outage leaves no 429 behind;
// attempts in flight count too, so parallel guesses cannot slip past. It
// also counts what a client could otherwise do at will (sign-ups, new
// sessions, renewals). The limits and why each exists: docs/security.md.
package throttle

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// Limit is at most Max failures per fixed Window.
type Limit struct {
	Max    int
	Window time.Duration
}

// Policy is the set of limits a login is checked against.
type Policy struct {
	Pair      Limit         // one account from one address
	Address   Limit         // one address, any account
	Account   Limit         // one account, from addresses not known for it
	Known     time.Duration // how long a successful login makes an address known for the account
	Signup    Limit         // account creations from one address; Max 0: no limit
	Anonymous Limit         // new anonymous sessions from one address; Max 0: no limit
	// What renews a session at a logged-in client's will, and so writes
	// audit lines: Max 0, no limit.
	RevokeOthers Limit // "log out everywhere else" of one account
	LabSwitch    Limit // lab switches (-lab) of one session
}

// DefaultClass is how many students behind one address (a school's NAT) the
// default limits let in; docs/security.md has the figures.
const DefaultClass = 200

// DefaultPolicy is ForClass(DefaultClass).
var DefaultPolicy = ForClass(DefaultClass)

// ForClass is the policy for a class of n behind one address. Only the
// address's limits grow with n, so nobody guesses one account faster.
func ForClass(n int) Policy {
	return Policy{
		Pair:    Limit{Max: 5, Window: 5 * time.Minute},
		Address: Limit{Max: 2 * n, Window: 15 * time.Minute},
		Account: Limit{Max: 20, Window: 5 * time.Minute},
		Known:   30 * 24 * time.Hour,
		Signup:  Limit{Max: n + n/2, Window: time.Hour},
		// The window is sessions.FreshFor, so a flood's unused keys expire
		// within it (a sessions test holds the two equal).
		Anonymous: Limit{Max: 3 * n, Window: 10 * time.Minute},
		// Each renews the token, replaces the account's credential
		// generation and walks its sessions, with two audit lines. A
		// student uses it once or twice in the tutorial; a double click
		// without JavaScript counts twice.
		RevokeOthers: Limit{Max: 5, Window: 5 * time.Minute},
		// Each renews the token, with two audit lines. An experiment
		// flips a switch off and on again, a few times a session.
		LabSwitch: Limit{Max: 30, Window: time.Minute},
	}
}

// Kind names one of the throttle's keys.
type Kind string

// The keys the throttle keeps; see Key.
const (
	KindAddress    Kind = "addr"
	KindPair       Kind = "pair"
	KindAccount    Kind = "account"
	KindKnown      Kind = "known"
	KindSignup     Kind = "signup"
	KindNewSession Kind = "newsession"
	KindRevoke     Kind = "revokeothers"
)

// Key is the Redis key of one counter or "known address" mark (the list is
// in docs/redis.md); account is a normalized username, never containing ':'.
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
	case KindNewSession:
		return "newsession:addr:" + Subject(addr)
	case KindRevoke:
		// Under the account's own keys, which the Redis ACL user of
		// docs/deploy.md already covers: an ACL written for an earlier
		// version must not turn "log out everywhere else" into a 503.
		return "user:" + account + ":revoke-others"
	default:
		return "login:known:" + account + ":" + Subject(addr)
	}
}

// SessionKey counts the failed current-password checks of one session,
// named by its ID, never its token.
func SessionKey(sessionID string) string { return "password:fail:session:" + sessionID }

// LabSwitchKey counts the lab switches of one session, named by
// name (see LabSwitch).
func LabSwitchKey(name string) string { return "labswitch:session:" + name }

// Pending is the counter of attempts in flight beside a failure counter; it
// lives pendingFor, so an attempt whose process died is forgotten.
func Pending(counter string) string { return counter + ":pending" }

// pendingFor outlives an attempt (about a second of Redis work plus a
// bcrypt), and no more: an attempt whose settling was lost holds others up.
const pendingFor = 3 * time.Second

// busyFor is how long an attempt waits on attempts in flight before a 429:
// longer than pendingFor, so a lost attempt never causes it.
const (
	busyFor  = pendingFor + time.Second
	busyPoll = 25 * time.Millisecond
)

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
	// Log gets a WARN for each counter reset (see counterLua); nil:
	// slog.Default.
	Log *slog.Logger
}

// warnReset logs the counters a script reset.
func warnReset(ctx context.Context, log *slog.Logger, keys ...string) {
	for _, k := range keys {
		cmp.Or(log, slog.Default()).WarnContext(ctx,
			"throttle counter reset: it held what the app never writes there (another type, or not a whole number), so it counts afresh",
			"key", k)
	}
}

// resetKeys are the keys of the 1-based KEYS indexes a script reset.
func resetKeys(keys []string, idx []int64) []string {
	var out []string
	for _, i := range idx {
		if i >= 1 && int(i) <= len(keys) {
			out = append(out, keys[i-1])
		}
	}
	return out
}

// New returns a Throttle enforcing policy.
func New(rdb rueidis.Client, policy Policy) *Throttle {
	return &Throttle{rdb: rdb, policy: policy}
}

// counterLua reads and counts the counters of begin and settle. They are
// the app's own, but students edit keys with redis-cli (the pages teach it):
// a counter holding another type of value, or a value INCR cannot count,
// would fail every attempt it limits, for everyone behind the address, and
// after SET it has no expiry to end it. Such a counter is reset: deleted,
// so the attempt counts afresh with its window; reset lists its KEYS
// index, for the app's log. Only those errors reset (an OOM or a refused
// command is raised again), and only a value the app never writes: a
// counter it wrote counts and limits as ever, so nobody who cannot write
// to Redis skips a limit this way.
const counterLua = `
local function counter_unusable(e)
  local m = type(e) == 'table' and e.err or tostring(e)
  return string.find(m, 'WRONGTYPE', 1, true) or string.find(m, 'not an integer', 1, true) or
    string.find(m, 'would overflow', 1, true)
end
local reset = {}
local function reset_counter(i)
  redis.call('DEL', KEYS[i])
  reset[#reset + 1] = i
end
-- value is KEYS[i]'s count, 0 when absent or reset.
local function value(i)
  local ok, v = pcall(redis.call, 'GET', KEYS[i])
  if not ok then
    if not counter_unusable(v) then error(v, 0) end
    reset_counter(i)
    return 0
  end
  if not v then return 0 end
  local n = tonumber(v)
  if not n or not string.find(v, '^%-?%d+$') then
    reset_counter(i)
    return 0
  end
  return n
end
-- add runs INCR or DECR on KEYS[i]; after a reset, INCR counts from 1 and
-- DECR has nothing left to take back.
local function add(cmd, i)
  local ok, n = pcall(redis.call, cmd, KEYS[i])
  if ok then return n end
  if not counter_unusable(n) then error(n, 0) end
  reset_counter(i)
  if cmd == 'INCR' then return redis.call('INCR', KEYS[i]) end
  return 0
end
`

// begin checks an attempt and, if it may go ahead, counts it in flight.
// KEYS: counters, their pending counters, [known mark]. ARGV: n, the counter
// skipped when the mark exists (0: none), pendingFor, then max and window of
// each. Returns {0|1 (wait)|2 (busy), ms, skipped, KEYS indexes reset...}.
// A counter that lost its TTL gets one again, so nothing blocks forever; a
// pending counter without one (only a hand edit leaves one) is reset.
var begin = redistrace.NewScript("login attempt", counterLua+`
local n, cond, pfor = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local skip = 0
if cond > 0 and redis.call('EXISTS', KEYS[2*n+1]) == 1 then skip = cond end
local wait, busy = 0, false
for i = 1, n do
  if i ~= skip then
    local max, window = tonumber(ARGV[2+2*i]), ARGV[3+2*i]
    local f, p = value(i), value(n+i)
    if f >= max then
      local ttl = redis.call('PTTL', KEYS[i])
      if ttl < 0 then
        redis.call('PEXPIRE', KEYS[i], window)
        ttl = tonumber(window)
      end
      wait = math.max(wait, ttl)
    elseif f + p >= max then
      if redis.call('PTTL', KEYS[n+i]) == -1 then reset_counter(n+i) else busy = true end
    end
  end
end
if wait > 0 then return {1, wait, skip, unpack(reset)} end
if busy then return {2, 0, skip, unpack(reset)} end
for i = 1, n do
  if i ~= skip then
    add('INCR', n+i)
    redis.call('PEXPIRE', KEYS[n+i], pfor)
  end
end
return {0, 0, skip, unpack(reset)}`)

// settle ends an attempt. KEYS: counters, pending counters, [counter to clear,
// mark to set on success]; ARGV: outcome, n, windows, the mark's lifetime.
// Returns the KEYS indexes reset.
var settle = redistrace.NewScript("settle attempt", counterLua+`
local outcome, n = ARGV[1], tonumber(ARGV[2])
for i = 1, n do
  if value(n+i) > 0 then add('DECR', n+i) end
  if outcome == 'failed' then
    add('INCR', i)
    redis.call('PEXPIRE', KEYS[i], ARGV[2+i], 'NX')
  end
end
if outcome == 'ok' then
  if KEYS[2*n+1] then redis.call('DEL', KEYS[2*n+1]) end
  if KEYS[2*n+2] then redis.call('SET', KEYS[2*n+2], '1', 'PX', ARGV[3+n]) end
end
return reset`)

// CountLimitLua is the Lua function count_limit(key, max, window_ms): 0 when
// the step may go ahead (counted), else the ms to wait; and true when the
// counter was reset (see counterLua: another type, or a value INCR cannot
// count, is deleted and the step counted afresh). Other packages' scripts
// include it to take a limited step in the same round trip. A step is
// counted first (one command, the window's first sets its expiry) and a
// refused one taken back, so the counter never passes max.
const CountLimitLua = `
local function count_limit(key, max, window)
  local ok, n = pcall(redis.call, 'INCR', key)
  local reset = false
  if not ok then
    local m = type(n) == 'table' and n.err or tostring(n)
    if not (string.find(m, 'WRONGTYPE', 1, true) or string.find(m, 'not an integer', 1, true) or
      string.find(m, 'would overflow', 1, true)) then error(n, 0) end
    redis.call('DEL', key)
    n, reset = redis.call('INCR', key), true
  end
  if n > tonumber(max) then
    redis.call('DECR', key)
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('PEXPIRE', key, window)
      ttl = tonumber(window)
    end
    return ttl, reset
  end
  if n == 1 then redis.call('PEXPIRE', key, window) end
  return 0, reset
end
`

// count is count_limit as a script of its own (sign-ups, new sessions):
// {ms to wait, 1 if the counter was reset}.
var count = redistrace.NewScript("count attempt", CountLimitLua+`
local wait, reset = count_limit(KEYS[1], ARGV[1], ARGV[2])
return {wait, reset and 1 or 0}`)

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

// counter is one limit an attempt is checked against.
type counter struct {
	key   string
	limit Limit
}

// Outcome is how an attempt in flight ended.
type Outcome string

const (
	Failed    Outcome = "failed"    // the password was checked and wrong: counted
	Succeeded Outcome = "ok"        // right: nothing counted, the pair cleared
	Unchecked Outcome = "unchecked" // never checked (Redis failed first): nothing counted
)

// ErrInFlight comes with a wait: the attempt was refused because others in
// flight for long (a flood, or a queue for the password-hashing slots) could
// take it past a limit, not because failures did. Nothing was counted.
var ErrInFlight = errors.New("throttle: refused while attempts in flight could take it past a limit")

// Ticket is an attempt let through and in flight; Done settles it. A nil
// Ticket (no throttle) settles as nothing.
type Ticket struct {
	t        *Throttle
	counters []counter
	clear    string // counter cleared on success ("" none)
	known    string // mark set on success ("" none)
}

// attempt runs begin, waiting while only attempts in flight stand in the
// way. knownKey and cond: see begin.
func (t *Throttle) attempt(ctx context.Context, counters []counter, knownKey string, cond int) (*Ticket, time.Duration, error) {
	keys := make([]string, 0, 2*len(counters)+1)
	for _, c := range counters {
		keys = append(keys, c.key)
	}
	for _, c := range counters {
		keys = append(keys, Pending(c.key))
	}
	if cond > 0 {
		keys = append(keys, knownKey)
	}
	args := []string{strconv.Itoa(len(counters)), strconv.Itoa(cond), ms(pendingFor)}
	for _, c := range counters {
		args = append(args, strconv.Itoa(c.limit.Max), ms(c.limit.Window))
	}
	giveUp := time.Now().Add(busyFor)
	for {
		res, err := begin.Exec(ctx, t.rdb, keys, args).AsIntSlice()
		if err != nil {
			return nil, 0, fmt.Errorf("throttle: attempt: %w", err)
		}
		if len(res) < 3 {
			return nil, 0, fmt.Errorf("throttle: attempt: unexpected reply %v", res)
		}
		code, wait, skip := res[0], res[1], int(res[2])
		warnReset(ctx, t.Log, resetKeys(keys, res[3:])...)
		switch {
		case code == 1:
			return nil, time.Duration(wait) * time.Millisecond, nil
		case code == 2 && time.Now().Before(giveUp):
			select {
			case <-ctx.Done():
				return nil, 0, fmt.Errorf("throttle: attempt: %w", ctx.Err())
			case <-time.After(busyPoll):
			}
			continue
		case code == 2:
			return nil, time.Second, ErrInFlight // a flood of attempts in flight
		}
		tk := &Ticket{t: t}
		for i, c := range counters {
			if i+1 != skip {
				tk.counters = append(tk.counters, c)
			}
		}
		return tk, 0, nil
	}
}

// Login checks a login attempt for account ("" if the name cannot be one)
// from addr: it returns the attempt to settle with Done, or how long to wait.
func (t *Throttle) Login(ctx context.Context, account string, addr netip.Addr) (*Ticket, time.Duration, error) {
	p := t.policy
	counters := []counter{{Key(KindAddress, "", addr), p.Address}}
	if account == "" {
		return t.attempt(ctx, counters, "", 0)
	}
	counters = append(counters,
		counter{Key(KindPair, account, addr), p.Pair},
		counter{Key(KindAccount, account, addr), p.Account})
	known := Key(KindKnown, account, addr)
	tk, wait, err := t.attempt(ctx, counters, known, 3) // the account limit spares known addresses
	if tk != nil {
		tk.clear, tk.known = Key(KindPair, account, addr), known
	}
	return tk, wait, err
}

// PasswordCheck checks a password change's current-password check: the
// session gets the pair limit, the account shares its limit with logins.
func (t *Throttle) PasswordCheck(ctx context.Context, account, sessionID string) (*Ticket, time.Duration, error) {
	p := t.policy
	tk, wait, err := t.attempt(ctx, []counter{
		{SessionKey(sessionID), p.Pair},
		{Key(KindAccount, account, netip.Addr{}), p.Account},
	}, "", 0)
	if tk != nil {
		tk.clear = SessionKey(sessionID)
	}
	return tk, wait, err
}

// KeepInFlight keeps the attempt's in-flight marks alive until stop is
// called: they lapse pendingFor after the last refresh, which forgets an
// attempt whose process died, and must not forget one waiting its turn for
// a password-hashing slot (accounts.Hashing), which may take longer.
func (tk *Ticket) KeepInFlight(ctx context.Context) (stop func()) {
	if tk == nil || len(tk.counters) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(pendingFor / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			cmds := make(rueidis.Commands, 0, len(tk.counters))
			for _, c := range tk.counters {
				cmds = append(cmds, tk.t.rdb.B().Pexpire().Key(Pending(c.key)).Milliseconds(pendingFor.Milliseconds()).Build())
			}
			for _, r := range tk.t.rdb.DoMulti(ctx, cmds...) {
				if err := r.Error(); err != nil && ctx.Err() == nil && tk.t.Log != nil {
					tk.t.Log.WarnContext(ctx, "throttle: an attempt in flight could not be kept in flight", "err", err)
					break
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// Done settles the attempt: only Failed counts; Succeeded also clears the
// pair and makes the address known for the account.
func (tk *Ticket) Done(ctx context.Context, o Outcome) error {
	if tk == nil {
		return nil
	}
	n := len(tk.counters)
	keys := make([]string, 0, 2*n+2)
	for _, c := range tk.counters {
		keys = append(keys, c.key)
	}
	for _, c := range tk.counters {
		keys = append(keys, Pending(c.key))
	}
	args := []string{string(o), strconv.Itoa(n)}
	for _, c := range tk.counters {
		args = append(args, ms(c.limit.Window))
	}
	args = append(args, ms(tk.t.policy.Known))
	if tk.clear != "" {
		keys = append(keys, tk.clear)
		if tk.known != "" {
			keys = append(keys, tk.known)
		}
	}
	reset, err := settle.Exec(ctx, tk.t.rdb, keys, args).AsIntSlice()
	if err != nil {
		return fmt.Errorf("throttle: settle: %w", err)
	}
	warnReset(ctx, tk.t.Log, resetKeys(keys, reset)...)
	return nil
}

// Signup counts an account creation from addr before its password is
// hashed; it returns how long to wait (0: go ahead).
func (t *Throttle) Signup(ctx context.Context, addr netip.Addr) (time.Duration, error) {
	return t.count(ctx, Key(KindSignup, "", addr), t.policy.Signup, "sign-up")
}

// SignupNotHashed takes back Signup's count for a sign-up whose password
// was never hashed (every hashing slot was taken): only sign-ups made count.
func (t *Throttle) SignupNotHashed(ctx context.Context, addr netip.Addr) error {
	if t.policy.Signup.Max <= 0 {
		return nil
	}
	if err := uncount.Exec(ctx, t.rdb, []string{Key(KindSignup, "", addr)}, nil).Error(); err != nil {
		return fmt.Errorf("throttle: sign-up not hashed: %w", err)
	}
	return nil
}

// uncount takes one count back: never below zero, never a counter that is
// gone (its window ended) or that INCR could not count; the window keeps
// its expiry.
var uncount = redistrace.NewScript("take back an attempt", `
local ok, n = pcall(redis.call, 'GET', KEYS[1])
n = ok and tonumber(n)
if n and n > 0 then redis.call('DECR', KEYS[1]) end
return 0`)

// NewSession counts a new anonymous session from addr before its key is
// written; it returns how long to wait (0: go ahead).
func (t *Throttle) NewSession(ctx context.Context, addr netip.Addr) (time.Duration, error) {
	return t.count(ctx, Key(KindNewSession, "", addr), t.policy.Anonymous, "new session")
}

// RevokeOthers counts a "log out everywhere else" of account before
// anything is changed; it returns how long to wait (0: go ahead).
func (t *Throttle) RevokeOthers(ctx context.Context, account string) (time.Duration, error) {
	return t.count(ctx, Key(KindRevoke, account, netip.Addr{}), t.policy.RevokeOthers, "log out everywhere else")
}

// LabSwitch counts a lab switch of the session named name (a name it
// keeps through its renewals) before anything is changed; it returns how
// long to wait (0: go ahead).
func (t *Throttle) LabSwitch(ctx context.Context, name string) (time.Duration, error) {
	return t.count(ctx, LabSwitchKey(name), t.policy.LabSwitch, "lab switch")
}

// Step is one limited step for CountLimitLua; the zero Step limits nothing.
type Step struct {
	Key   string
	Limit Limit
}

// Args are what count_limit takes after the key: max and window (ms).
func (s Step) Args() []string { return []string{strconv.Itoa(s.Limit.Max), ms(s.Limit.Window)} }

// NewSessionStep is what NewSession counts, for a script that counts it
// itself; the zero Step when new sessions are not limited.
func (t *Throttle) NewSessionStep(addr netip.Addr) Step {
	if t.policy.Anonymous.Max <= 0 {
		return Step{}
	}
	return Step{Key: Key(KindNewSession, "", addr), Limit: t.policy.Anonymous}
}

// count runs the count script for one limit (Max 0: no limit).
func (t *Throttle) count(ctx context.Context, key string, l Limit, what string) (time.Duration, error) {
	wait, err := CountStep(ctx, t.rdb, Step{Key: key, Limit: l}, t.Log)
	if err != nil {
		return 0, fmt.Errorf("throttle: %s: %w", what, err)
	}
	return wait, nil
}

// CountStep checks and counts one step in one round trip; it returns how
// long to wait (0: go ahead). The zero Step sends nothing.
// A counter reset gets a WARN in log (nil: slog.Default).
func CountStep(ctx context.Context, rdb rueidis.Client, s Step, log *slog.Logger) (time.Duration, error) {
	if s.Key == "" || s.Limit.Max <= 0 {
		return 0, nil
	}
	res, err := count.Exec(ctx, rdb, []string{s.Key}, s.Args()).AsIntSlice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", s.Key, err)
	}
	if res[1] == 1 {
		warnReset(ctx, log, s.Key)
	}
	return time.Duration(res[0]) * time.Millisecond, nil
}

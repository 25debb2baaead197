package throttle_test

import (
	"context"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

var small = throttle.Policy{
	Pair:    throttle.Limit{Max: 3, Window: time.Minute},
	Address: throttle.Limit{Max: 10, Window: 2 * time.Minute},
	Account: throttle.Limit{Max: 5, Window: 30 * time.Second},
	Known:   time.Hour,
}

// The policy the app runs with is a promise to users and to the docs; a
// change to it is a decision, made here on purpose.
func TestDefaultPolicyIsPinned(t *testing.T) {
	want := throttle.Policy{
		Pair:    throttle.Limit{Max: 5, Window: 5 * time.Minute},
		Address: throttle.Limit{Max: 400, Window: 15 * time.Minute},
		Account: throttle.Limit{Max: 20, Window: 5 * time.Minute},
		Known:   30 * 24 * time.Hour,
		Signup:  throttle.Limit{Max: 300, Window: time.Hour},
		// New anonymous sessions per address: a class behind one NAT.
		Anonymous: throttle.Limit{Max: 600, Window: 10 * time.Minute},
		// What renews a session at a logged-in client's will.
		RevokeOthers: throttle.Limit{Max: 5, Window: 5 * time.Minute},
		LabSwitch:    throttle.Limit{Max: 30, Window: time.Minute},
	}
	if throttle.DefaultPolicy != want {
		t.Errorf("DefaultPolicy = %+v\nwant %+v\n(change this test and the docs together with the policy)", throttle.DefaultPolicy, want)
	}
}

// The limits the app runs with, as users meet them: each allows exactly its
// documented number (README, docs) and refuses the next, for about its
// window. A change to DefaultPolicy fails here by what it does, not by its
// literals.
func TestDefaultPolicyAtItsLimits(t *testing.T) {
	p := throttle.DefaultPolicy
	around := func(t *testing.T, wait, window time.Duration) {
		t.Helper()
		if wait > window || wait < window-time.Minute {
			t.Errorf("wait %v, want about %v", wait, window)
		}
	}
	t.Run("the sixth wrong password for one account from one address waits 5 minutes", func(t *testing.T) {
		th, _ := start(t, p)
		for range 5 {
			fail(t, th, "alice", "192.0.2.1")
		}
		_, wait := attempt(t, th, "alice", "192.0.2.1", false)
		around(t, wait, 5*time.Minute)
	})
	t.Run("the 21st failure for one account from unknown addresses waits 5 minutes", func(t *testing.T) {
		th, _ := start(t, p)
		for i := range 20 {
			fail(t, th, "alice", "203.0.113."+strconv.Itoa(i+1))
		}
		_, wait := attempt(t, th, "alice", "203.0.113.200", false)
		around(t, wait, 5*time.Minute)
	})
	t.Run("the 401st failure from one address waits 15 minutes", func(t *testing.T) {
		th, _ := start(t, p)
		for i := range 400 {
			fail(t, th, "user"+strconv.Itoa(i), "192.0.2.9")
		}
		_, wait := attempt(t, th, "someone-else", "192.0.2.9", false)
		around(t, wait, 15*time.Minute)
	})
	counted := []struct {
		name   string
		max    int
		window time.Duration
		try    func(*throttle.Throttle) (time.Duration, error)
	}{
		{"the 301st sign-up from one address waits an hour", 300, time.Hour, func(th *throttle.Throttle) (time.Duration, error) {
			return th.Signup(context.Background(), ip("192.0.2.7"))
		}},
		{"the 601st new anonymous session from one address waits 10 minutes", 600, 10 * time.Minute, func(th *throttle.Throttle) (time.Duration, error) {
			return th.NewSession(context.Background(), ip("192.0.2.8"))
		}},
		{"the 6th 'log out everywhere else' of one account waits 5 minutes", 5, 5 * time.Minute, func(th *throttle.Throttle) (time.Duration, error) {
			return th.RevokeOthers(context.Background(), "alice")
		}},
		{"the 31st lab switch of one session waits a minute", 30, time.Minute, func(th *throttle.Throttle) (time.Duration, error) {
			return th.LabSwitch(context.Background(), "session-1")
		}},
	}
	for _, c := range counted {
		t.Run(c.name, func(t *testing.T) {
			th, _ := start(t, p)
			for i := range c.max + 1 {
				wait, err := c.try(th)
				if err != nil {
					t.Fatal(err)
				}
				if i < c.max && wait != 0 {
					t.Fatalf("number %d waits %v, want allowed", i+1, wait)
				}
				if i == c.max {
					around(t, wait, c.window)
				}
			}
		})
	}
}

func start(t *testing.T, p throttle.Policy) (*throttle.Throttle, *redistest.Server) {
	t.Helper()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	return throttle.New(rdb, p), rs
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// attempt asserts whether a login attempt may go ahead, and returns its
// ticket (nil when blocked) and wait.
func attempt(t *testing.T, th *throttle.Throttle, account, addr string, allowed bool) (*throttle.Ticket, time.Duration) {
	t.Helper()
	tk, wait, err := th.Login(context.Background(), account, ip(addr))
	if err != nil {
		t.Fatal(err)
	}
	if (tk != nil) != allowed || (wait == 0) != allowed {
		t.Fatalf("attempt %s from %s: ticket %v, wait %v, want allowed=%v", account, addr, tk != nil, wait, allowed)
	}
	return tk, wait
}

// done settles a ticket.
func done(t *testing.T, tk *throttle.Ticket, o throttle.Outcome) {
	t.Helper()
	if err := tk.Done(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}

// fail is a login attempt that goes ahead and whose password is wrong.
func fail(t *testing.T, th *throttle.Throttle, account, addr string) {
	t.Helper()
	tk, _ := attempt(t, th, account, addr, true)
	done(t, tk, throttle.Failed)
}

func TestPairLimitBlocksUntilItsWindowEnds(t *testing.T) {
	th, rs := start(t, small)
	for range small.Pair.Max {
		fail(t, th, "alice", "192.0.2.1")
	}
	_, wait := attempt(t, th, "alice", "192.0.2.1", false)
	if wait > small.Pair.Window || wait < small.Pair.Window-5*time.Second {
		t.Errorf("wait %v, want about the %v window", wait, small.Pair.Window)
	}
	// Blocked attempts are not counted: the counter stays at the limit.
	attempt(t, th, "alice", "192.0.2.1", false)
	if got := rs.MustDo("GET", throttle.Key(throttle.KindPair, "alice", ip("192.0.2.1"))); got != strconv.Itoa(small.Pair.Max) {
		t.Errorf("pair counter = %s, want %d", got, small.Pair.Max)
	}
	// Another address, and another account, are not affected.
	attempt(t, th, "alice", "192.0.2.2", true)
	attempt(t, th, "bob", "192.0.2.1", true)
}

func TestSuccessCountsNothingAndClearsThePair(t *testing.T) {
	th, rs := start(t, small)
	for range small.Pair.Max - 1 {
		fail(t, th, "alice", "192.0.2.1")
	}
	tk, _ := attempt(t, th, "alice", "192.0.2.1", true) // the right password this time
	done(t, tk, throttle.Succeeded)
	if got := rs.MustDo("EXISTS", throttle.Key(throttle.KindPair, "alice", ip("192.0.2.1"))); got != "0" {
		t.Errorf("pair counter still exists after a successful login")
	}
	if got := rs.MustDo("GET", throttle.Key(throttle.KindAddress, "", ip("192.0.2.1"))); got != strconv.Itoa(small.Pair.Max-1) {
		t.Errorf("address counter = %s, want %d (failures only)", got, small.Pair.Max-1)
	}
	if got := rs.MustDo("EXISTS", throttle.Key(throttle.KindKnown, "alice", ip("192.0.2.1"))); got != "1" {
		t.Errorf("address not marked known after a successful login")
	}
	for range small.Pair.Max {
		fail(t, th, "alice", "192.0.2.1")
	}
}

// An attempt whose password was never checked (Redis failed first) is not
// a failure: as many as you like leave the limit untouched.
func TestUncheckedAttemptsAreNotCounted(t *testing.T) {
	th, rs := start(t, small)
	for range 2 * small.Pair.Max {
		tk, _ := attempt(t, th, "alice", "192.0.2.1", true)
		done(t, tk, throttle.Unchecked)
	}
	for _, k := range []string{
		throttle.Key(throttle.KindPair, "alice", ip("192.0.2.1")),
		throttle.Pending(throttle.Key(throttle.KindPair, "alice", ip("192.0.2.1"))),
	} {
		if got := rs.MustDo("GET", k); got != "" && got != "0" {
			t.Errorf("%s = %q after unchecked attempts, want nothing", k, got)
		}
	}
}

// A correct password submitted several times at once logs in each time,
// even right under the limit: in-flight attempts are not failures.
func TestCorrectPasswordsAtOnceAreNotBlocked(t *testing.T) {
	th, _ := start(t, small)
	for range small.Pair.Max - 1 {
		fail(t, th, "alice", "192.0.2.1")
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	blocked := 0
	for range 3 {
		wg.Go(func() {
			tk, _, err := th.Login(context.Background(), "alice", ip("192.0.2.1"))
			if err != nil {
				t.Error(err)
				return
			}
			if tk == nil {
				mu.Lock()
				blocked++
				mu.Unlock()
				return
			}
			time.Sleep(50 * time.Millisecond) // bcrypt
			if err := tk.Done(context.Background(), throttle.Succeeded); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if blocked > 0 {
		t.Errorf("%d of 3 correct logins at once were blocked", blocked)
	}
}

// An attacker spread over many addresses blocks new addresses for the
// account, but not one its owner logged in from before.
func TestAccountLimitSparesKnownAddresses(t *testing.T) {
	th, _ := start(t, small)
	owner := "198.51.100.7"
	tk, _ := attempt(t, th, "alice", owner, true)
	done(t, tk, throttle.Succeeded)
	for i := range small.Account.Max {
		fail(t, th, "alice", "203.0.113."+strconv.Itoa(i+1))
	}
	_, wait := attempt(t, th, "alice", "203.0.113.200", false)
	if wait > small.Account.Window {
		t.Errorf("wait %v, longer than the account window %v", wait, small.Account.Window)
	}
	attempt(t, th, "alice", owner, true)
	// Failures from the owner's address do not count towards the account limit.
	for range small.Pair.Max - 1 {
		fail(t, th, "bob", owner)
	}
}

func TestAddressLimitCoversEveryAccount(t *testing.T) {
	th, _ := start(t, small)
	for i := range small.Address.Max {
		fail(t, th, "user"+strconv.Itoa(i), "192.0.2.9")
	}
	attempt(t, th, "someone-else", "192.0.2.9", false)
	attempt(t, th, "", "192.0.2.9", false) // a name that cannot be an account
	attempt(t, th, "someone-else", "192.0.2.10", true)
}

func TestIPv6IsCountedPerSlash64(t *testing.T) {
	th, _ := start(t, small)
	for i := range small.Pair.Max {
		fail(t, th, "alice", "2001:db8:1:2::"+strconv.Itoa(i+1))
	}
	attempt(t, th, "alice", "2001:db8:1:2:ffff::1", false)
	attempt(t, th, "alice", "2001:db8:1:3::1", true)
	if got := throttle.Subject(ip("::ffff:192.0.2.1")); got != "192.0.2.1" {
		t.Errorf("Subject of a v4-mapped address = %q, want 192.0.2.1", got)
	}
}

// Parallel guesses cannot slip past the limit: an attempt that only the
// attempts in flight could take past it waits for them.
func TestParallelAttemptsRespectTheLimit(t *testing.T) {
	th, _ := start(t, small)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 30 {
		wg.Go(func() {
			tk, _, err := th.Login(context.Background(), "alice", ip("192.0.2.1"))
			if err != nil {
				t.Error(err)
				return
			}
			if tk == nil {
				return
			}
			mu.Lock()
			allowed++
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // bcrypt, then wrong
			if err := tk.Done(context.Background(), throttle.Failed); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if allowed != small.Pair.Max {
		t.Errorf("%d of 30 parallel guesses went ahead, want exactly %d", allowed, small.Pair.Max)
	}
}

// A password change's current-password check is limited per session, and
// shares the account's limit with logins.
func TestPasswordCheckLimits(t *testing.T) {
	th, _ := start(t, small)
	ctx := context.Background()
	check := func(account, session string, allowed bool) *throttle.Ticket {
		t.Helper()
		tk, wait, err := th.PasswordCheck(ctx, account, session)
		if err != nil {
			t.Fatal(err)
		}
		if (tk != nil) != allowed || (wait == 0) != allowed {
			t.Fatalf("check %s by %s: ticket %v, wait %v, want allowed=%v", account, session, tk != nil, wait, allowed)
		}
		return tk
	}
	for range small.Pair.Max {
		done(t, check("alice", "s1", true), throttle.Failed)
	}
	check("alice", "s1", false)
	for range small.Account.Max - small.Pair.Max {
		done(t, check("alice", "s2", true), throttle.Failed)
	}
	check("alice", "s3", false)
	attempt(t, th, "alice", "203.0.113.1", false) // a login from an unknown address
	check("bob", "s4", true)
}

func TestCounterWithoutTTLCannotBlockForever(t *testing.T) {
	th, rs := start(t, small)
	key := throttle.Key(throttle.KindPair, "alice", ip("192.0.2.1"))
	rs.MustDo("SET", key, "99")
	attempt(t, th, "alice", "192.0.2.1", false)
	ttl, _ := strconv.Atoi(rs.MustDo("PTTL", key))
	if ttl <= 0 || ttl > int(small.Pair.Window.Milliseconds()) {
		t.Errorf("PTTL %d, want a TTL of at most the pair window", ttl)
	}
}

func TestKeysExpireWithTheirWindow(t *testing.T) {
	th, rs := start(t, small)
	fail(t, th, "alice", "192.0.2.1")
	attempt(t, th, "alice", "192.0.2.1", true) // in flight
	for _, tc := range []struct {
		kind   throttle.Kind
		window time.Duration
	}{
		{throttle.KindAddress, small.Address.Window},
		{throttle.KindPair, small.Pair.Window},
		{throttle.KindAccount, small.Account.Window},
	} {
		key := throttle.Key(tc.kind, "alice", ip("192.0.2.1"))
		ttl, _ := strconv.Atoi(rs.MustDo("PTTL", key))
		if ttl <= 0 || ttl > int(tc.window.Milliseconds()) {
			t.Errorf("%s: PTTL %d, want within the %v window", key, ttl, tc.window)
		}
		pttl, _ := strconv.Atoi(rs.MustDo("PTTL", throttle.Pending(key)))
		if pttl <= 0 || pttl > 3000 {
			t.Errorf("%s: PTTL %d, want an attempt in flight forgotten within 3 s", throttle.Pending(key), pttl)
		}
	}
}

func TestSignupLimitPerAddress(t *testing.T) {
	p := small
	p.Signup = throttle.Limit{Max: 2, Window: time.Hour}
	th, rs := start(t, p)
	signup := func(addr string, allowed bool) time.Duration {
		t.Helper()
		wait, err := th.Signup(context.Background(), ip(addr))
		if err != nil {
			t.Fatal(err)
		}
		if (wait == 0) != allowed {
			t.Fatalf("sign-up from %s: wait %v, want allowed=%v", addr, wait, allowed)
		}
		return wait
	}
	signup("192.0.2.7", true)
	signup("192.0.2.7", true)
	if wait := signup("192.0.2.7", false); wait > time.Hour || wait < time.Hour-5*time.Second {
		t.Errorf("wait %v, want about the 1h window", wait)
	}
	signup("198.51.100.7", true)
	if got := rs.MustDo("GET", throttle.Key(throttle.KindSignup, "", ip("192.0.2.7"))); got != "2" {
		t.Errorf("sign-up counter = %q, want 2 (blocked sign-ups are not counted)", got)
	}
	// Logins from a throttled address are another matter.
	attempt(t, th, "alice", "192.0.2.7", true)
}

// A sign-up taken back (its password was never hashed) frees its place in
// the window, which keeps its end; taking back never goes below zero, never
// makes a counter whose window ended, and leaves a value it cannot count.
func TestASignupTakenBackFreesItsPlace(t *testing.T) {
	p := small
	p.Signup = throttle.Limit{Max: 2, Window: time.Hour}
	th, rs := start(t, p)
	ctx := context.Background()
	addr := ip("192.0.2.9")
	key := throttle.Key(throttle.KindSignup, "", addr)
	for range 2 {
		if wait, err := th.Signup(ctx, addr); err != nil || wait != 0 {
			t.Fatalf("Signup = %v, %v", wait, err)
		}
	}
	ttl := rs.MustDo("PTTL", key)
	if err := th.SignupNotHashed(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if wait, err := th.Signup(ctx, addr); err != nil || wait != 0 {
		t.Fatalf("the sign-up after one taken back: %v, %v; want allowed", wait, err)
	}
	if got := rs.MustDo("PTTL", key); atoi(t, got) > atoi(t, ttl) || atoi(t, got) < 0 {
		t.Errorf("the window's expiry went from %s to %s ms", ttl, got)
	}
	for _, v := range []string{"0", "a value INCR cannot count"} {
		rs.MustDo("SET", key, v, "PX", "60000")
		if err := th.SignupNotHashed(ctx, addr); err != nil {
			t.Fatal(err)
		}
		if got := rs.MustDo("GET", key); got != v {
			t.Errorf("taking back from %q left %q", v, got)
		}
	}
	rs.MustDo("DEL", key)
	if err := th.SignupNotHashed(ctx, addr); err != nil {
		t.Fatal(err)
	}
	if got := rs.MustDo("EXISTS", key); got != "0" {
		t.Errorf("taking back from an ended window made a counter")
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestZeroSignupLimitMeansNone(t *testing.T) {
	th, _ := start(t, small) // small sets no Signup limit
	for range 20 {
		if wait, err := th.Signup(context.Background(), ip("192.0.2.8")); err != nil || wait != 0 {
			t.Fatalf("Signup = %v, %v; want no limit", wait, err)
		}
	}
}

// A counter is reset only for a value the app never writes (see the
// handlers' throttle_retyped_test.go): an error of another kind, here
// Redis out of memory, is returned and leaves every counter as it was.
func TestOnlyAnUnusableCounterIsReset(t *testing.T) {
	th, rs := start(t, small)
	fail(t, th, "alice", "192.0.2.1")
	pair := throttle.Key(throttle.KindPair, "alice", ip("192.0.2.1"))
	signup := throttle.Key(throttle.KindSignup, "", ip("192.0.2.1"))
	p := small
	p.Signup = throttle.Limit{Max: 10, Window: time.Hour}
	th = throttle.New(rs.Client(t), p)
	if _, err := th.Signup(context.Background(), ip("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	rs.MustDo("CONFIG", "SET", "maxmemory-policy", "noeviction")
	rs.MustDo("CONFIG", "SET", "maxmemory", "1")
	_, _, loginErr := th.Login(context.Background(), "alice", ip("192.0.2.1"))
	_, signupErr := th.Signup(context.Background(), ip("192.0.2.1"))
	rs.MustDo("CONFIG", "SET", "maxmemory", "0")
	if loginErr == nil || signupErr == nil {
		t.Fatalf("out of memory: login %v, sign-up %v; want both to fail", loginErr, signupErr)
	}
	for key, want := range map[string]string{pair: "1", signup: "1"} {
		if got := rs.MustDo("GET", key); got != want {
			t.Errorf("%s holds %q after the failed attempt, want %q as before", key, got, want)
		}
	}
}

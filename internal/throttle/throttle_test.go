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
		Address: throttle.Limit{Max: 100, Window: 15 * time.Minute},
		Account: throttle.Limit{Max: 20, Window: 5 * time.Minute},
		Known:   30 * 24 * time.Hour,
		Signup:  throttle.Limit{Max: 50, Window: time.Hour},
	}
	if throttle.DefaultPolicy != want {
		t.Errorf("DefaultPolicy = %+v\nwant %+v\n(change this test and the docs together with the policy)", throttle.DefaultPolicy, want)
	}
}

func start(t *testing.T, p throttle.Policy) (*throttle.Throttle, *redistest.Server) {
	t.Helper()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	return throttle.New(rdb, p), rs
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

// attempt asserts whether an attempt may go ahead, and returns its wait.
func attempt(t *testing.T, th *throttle.Throttle, account, addr string, allowed bool) time.Duration {
	t.Helper()
	wait, err := th.Attempt(context.Background(), account, ip(addr))
	if err != nil {
		t.Fatal(err)
	}
	if (wait == 0) != allowed {
		t.Fatalf("attempt %s from %s: wait %v, want allowed=%v", account, addr, wait, allowed)
	}
	return wait
}

func TestPairLimitBlocksUntilItsWindowEnds(t *testing.T) {
	th, rs := start(t, small)
	for range small.Pair.Max {
		attempt(t, th, "alice", "192.0.2.1", true)
	}
	wait := attempt(t, th, "alice", "192.0.2.1", false)
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

func TestSuccessClearsThePairAndGivesTheAttemptBack(t *testing.T) {
	th, rs := start(t, small)
	ctx := context.Background()
	for range small.Pair.Max - 1 {
		attempt(t, th, "alice", "192.0.2.1", true)
	}
	attempt(t, th, "alice", "192.0.2.1", true) // the right password this time
	if err := th.Succeeded(ctx, "alice", ip("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	if got := rs.MustDo("EXISTS", throttle.Key(throttle.KindPair, "alice", ip("192.0.2.1"))); got != "0" {
		t.Errorf("pair counter still exists after a successful login")
	}
	if got := rs.MustDo("GET", throttle.Key(throttle.KindAddress, "", ip("192.0.2.1"))); got != strconv.Itoa(small.Pair.Max-1) {
		t.Errorf("address counter = %s, want %d (the successful attempt given back)", got, small.Pair.Max-1)
	}
	if got := rs.MustDo("EXISTS", throttle.Key(throttle.KindKnown, "alice", ip("192.0.2.1"))); got != "1" {
		t.Errorf("address not marked known after a successful login")
	}
	for range small.Pair.Max {
		attempt(t, th, "alice", "192.0.2.1", true)
	}
}

// An attacker spread over many addresses blocks new addresses for the
// account, but not one its owner logged in from before.
func TestAccountLimitSparesKnownAddresses(t *testing.T) {
	th, _ := start(t, small)
	ctx := context.Background()
	owner := "198.51.100.7"
	attempt(t, th, "alice", owner, true)
	if err := th.Succeeded(ctx, "alice", ip(owner)); err != nil {
		t.Fatal(err)
	}
	for i := range small.Account.Max {
		attempt(t, th, "alice", "203.0.113."+strconv.Itoa(i+1), true)
	}
	wait := attempt(t, th, "alice", "203.0.113.200", false)
	if wait > small.Account.Window {
		t.Errorf("wait %v, longer than the account window %v", wait, small.Account.Window)
	}
	attempt(t, th, "alice", owner, true)
	// Failures from the owner's address do not count towards the account limit.
	for range small.Pair.Max - 1 {
		attempt(t, th, "bob", owner, true)
	}
}

func TestAddressLimitCoversEveryAccount(t *testing.T) {
	th, _ := start(t, small)
	for i := range small.Address.Max {
		attempt(t, th, "user"+strconv.Itoa(i), "192.0.2.9", true)
	}
	attempt(t, th, "someone-else", "192.0.2.9", false)
	attempt(t, th, "", "192.0.2.9", false) // a name that cannot be an account
	attempt(t, th, "someone-else", "192.0.2.10", true)
}

func TestIPv6IsCountedPerSlash64(t *testing.T) {
	th, _ := start(t, small)
	for i := range small.Pair.Max {
		attempt(t, th, "alice", "2001:db8:1:2::"+strconv.Itoa(i+1), true)
	}
	attempt(t, th, "alice", "2001:db8:1:2:ffff::1", false)
	attempt(t, th, "alice", "2001:db8:1:3::1", true)
	if got := throttle.Subject(ip("::ffff:192.0.2.1")); got != "192.0.2.1" {
		t.Errorf("Subject of a v4-mapped address = %q, want 192.0.2.1", got)
	}
}

// Parallel guesses cannot slip past the limit: checking and counting are
// one atomic step.
func TestParallelAttemptsRespectTheLimit(t *testing.T) {
	th, _ := start(t, small)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 30 {
		wg.Go(func() {
			wait, err := th.Attempt(context.Background(), "alice", ip("192.0.2.1"))
			if err != nil {
				t.Error(err)
				return
			}
			if wait == 0 {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != small.Pair.Max {
		t.Errorf("%d of 30 parallel attempts went ahead, want exactly %d", allowed, small.Pair.Max)
	}
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
	attempt(t, th, "alice", "192.0.2.1", true)
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

func TestZeroSignupLimitMeansNone(t *testing.T) {
	th, _ := start(t, small) // small sets no Signup limit
	for range 20 {
		if wait, err := th.Signup(context.Background(), ip("192.0.2.8")); err != nil || wait != 0 {
			t.Fatalf("Signup = %v, %v; want no limit", wait, err)
		}
	}
}

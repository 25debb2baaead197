package handlers

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/throttle"
)

// loginFrom posts the login form as a client at addr, behind the test's
// trusted proxy (the test server's loopback peer).
func (ta *testApp) loginFrom(addr, user, password string, headers ...string) response {
	ta.t.Helper()
	return ta.post(ta.client(), "/login", url.Values{"username": {user}, "password": {password}},
		append([]string{"X-Forwarded-For", addr}, headers...)...)
}

func behindProxy(a *App) { a.TrustedProxies, _ = ParseTrustedProxies("127.0.0.1, ::1") }

// wantStatus fails unless r has the status.
func wantStatus(t *testing.T, what string, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d\n%s", what, r.status, status, r.body)
	}
}

// wantThrottled asserts a 429 with Retry-After of at most max seconds and
// the message on the login form.
func wantThrottled(t *testing.T, what string, r response, max int) {
	t.Helper()
	wantStatus(t, what, r, http.StatusTooManyRequests)
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > max {
		t.Errorf("%s: Retry-After %q, want 1..%d seconds", what, r.header.Get("Retry-After"), max)
	}
	if !strings.Contains(r.body, `data-testid="form-error">Too many failed logins`) ||
		!strings.Contains(r.body, `data-testid="login-form"`) {
		t.Errorf("%s: no clear message on the login form\n%s", what, r.body)
	}
}

// defaultPolicy is the policy the app runs with, refused when a limit is
// too loose for a test to walk up to it (they send that many requests):
// internal/throttle pins the numbers themselves.
func defaultPolicy(t *testing.T) throttle.Policy {
	t.Helper()
	p := throttle.DefaultPolicy
	for name, l := range map[string]throttle.Limit{"Pair": p.Pair, "Address": p.Address, "Account": p.Account} {
		if l.Max < 1 || l.Max > 500 {
			t.Fatalf("DefaultPolicy.%s.Max = %d; these tests send that many logins and need 1..500 (the address limit is 400, for a class of 200)", name, l.Max)
		}
	}
	return p
}

func TestLoginThrottling(t *testing.T) {
	p := defaultPolicy(t)
	pairWait, accountWait := int(p.Pair.Window.Seconds()), int(p.Account.Window.Seconds())
	ta := newTestApp(t, behindProxy)
	for _, u := range []string{"alice", "bob", "carol", "dave"} {
		ta.register(ta.client(), u, u+"-password")
	}

	t.Run("past the limit for one account from one address: 429, even with the right password", func(t *testing.T) {
		for i := range p.Pair.Max {
			wantStatus(t, "wrong password #"+strconv.Itoa(i+1), ta.loginFrom("192.0.2.1", "alice", "wrong-password"), http.StatusUnauthorized)
		}
		wantThrottled(t, "one more", ta.loginFrom("192.0.2.1", "alice", "wrong-password"), pairWait)
		wantThrottled(t, "the right password", ta.loginFrom("192.0.2.1", "alice", "alice-password"), pairWait)
		r := ta.loginFrom("192.0.2.1", "ALICE", "wrong-password", "HX-Request", "true")
		wantThrottled(t, "htmx, another spelling of the name", r, pairWait)
		if strings.Contains(r.body, "<html") {
			t.Error("htmx got a whole page, want the form fragment")
		}
		if ta.redis.MustDo("GET", throttle.Key(throttle.KindPair, "alice", netip.MustParseAddr("192.0.2.1"))) != strconv.Itoa(p.Pair.Max) {
			t.Error("the pair counter is not where throttle.Key says, or blocked attempts were counted")
		}
	})
	t.Run("the owner elsewhere is not affected", func(t *testing.T) {
		wantStatus(t, "login", ta.loginFrom("198.51.100.1", "alice", "alice-password"), http.StatusSeeOther)
	})
	t.Run("a successful login clears the address's failures", func(t *testing.T) {
		for range p.Pair.Max - 1 {
			wantStatus(t, "typo", ta.loginFrom("192.0.2.2", "bob", "wrong-password"), http.StatusUnauthorized)
		}
		wantStatus(t, "login", ta.loginFrom("192.0.2.2", "bob", "bob-password"), http.StatusSeeOther)
		for range p.Pair.Max {
			wantStatus(t, "later typo", ta.loginFrom("192.0.2.2", "bob", "wrong-password"), http.StatusUnauthorized)
		}
	})
	t.Run("an unknown username is throttled like a real one", func(t *testing.T) {
		for range p.Pair.Max {
			wantStatus(t, "guess", ta.loginFrom("192.0.2.3", "nobody", "wrong-password"), http.StatusUnauthorized)
		}
		wantThrottled(t, "one more", ta.loginFrom("192.0.2.3", "nobody", "wrong-password"), pairWait)
	})
	t.Run("an attacker on many addresses cannot lock the owner out", func(t *testing.T) {
		owner := "203.0.113.77"
		wantStatus(t, "owner's earlier login", ta.loginFrom(owner, "carol", "carol-password"), http.StatusSeeOther)
		for i := range p.Account.Max {
			wantStatus(t, "bot", ta.loginFrom("10.9.0."+strconv.Itoa(i+1), "carol", "wrong-password"), http.StatusUnauthorized)
		}
		wantThrottled(t, "yet another bot", ta.loginFrom("10.9.1.1", "carol", "wrong-password"), accountWait)
		wantThrottled(t, "a new address, right password", ta.loginFrom("10.9.1.2", "carol", "carol-password"), accountWait)
		wantStatus(t, "the owner from a known address", ta.loginFrom(owner, "carol", "carol-password"), http.StatusSeeOther)
	})
	t.Run("one address guessing across accounts is stopped", func(t *testing.T) {
		for i := range p.Address.Max {
			r := ta.loginFrom("2001:db8:5::"+strconv.Itoa(i+1), "user"+strconv.Itoa(i), "wrong-password")
			wantStatus(t, "spray", r, http.StatusUnauthorized)
		}
		// Another address in the same /64, and a real account.
		wantThrottled(t, "one more", ta.loginFrom("2001:db8:5::ffff", "dave", "dave-password"), int(p.Address.Window.Seconds()))
		wantStatus(t, "another network", ta.loginFrom("2001:db8:6::1", "dave", "dave-password"), http.StatusSeeOther)
	})
}

// Without -trusted-proxies, X-Forwarded-For is the client's own claim and
// changes nothing.
func TestForwardedForIgnoredWithoutTrustedProxies(t *testing.T) {
	p := defaultPolicy(t)
	ta := newTestApp(t)
	ta.register(ta.client(), "alice", "alice-password")
	for i := range p.Pair.Max {
		wantStatus(t, "guess", ta.loginFrom("192.0.2."+strconv.Itoa(i+1), "alice", "wrong-password"), http.StatusUnauthorized)
	}
	wantThrottled(t, "a guess claiming a new address", ta.loginFrom("192.0.2.251", "alice", "wrong-password"), int(p.Pair.Window.Seconds()))
	if got := ta.redis.MustDo("EXISTS", throttle.Key(throttle.KindAddress, "", netip.MustParseAddr("127.0.0.1"))); got != "1" {
		t.Error("failures not counted against the real peer address")
	}
}

func TestSignupThrottling(t *testing.T) {
	limit := throttle.Limit{Max: 2, Window: time.Hour}
	ta := newTestApp(t, behindProxy)
	p := throttle.DefaultPolicy
	p.Signup = limit
	ta.app.Throttle = throttle.New(newRedisClient(t, ta.redis), p)
	registerFrom := func(addr, name, password string) response {
		t.Helper()
		return ta.post(ta.client(), "/register", url.Values{"username": {name}, "password": {password}},
			"X-Forwarded-For", addr)
	}
	wantStatus(t, "first", registerFrom("192.0.2.5", "erin", "erin-password"), http.StatusSeeOther)
	wantStatus(t, "invalid input is not counted", registerFrom("192.0.2.5", "x", "short"), http.StatusUnprocessableEntity)
	wantStatus(t, "second", registerFrom("192.0.2.5", "frank", "frank-password"), http.StatusSeeOther)

	r := registerFrom("192.0.2.5", "gina", "gina-password")
	wantStatus(t, "past the limit", r, http.StatusTooManyRequests)
	if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 || secs > int(limit.Window.Seconds()) {
		t.Errorf("Retry-After %q, want 1..%d seconds", r.header.Get("Retry-After"), int(limit.Window.Seconds()))
	}
	if !strings.Contains(r.body, `data-testid="form-error">Too many accounts`) || !strings.Contains(r.body, `data-testid="register-form"`) {
		t.Errorf("no clear message on the register form\n%s", r.body)
	}
	if got := ta.redis.MustDo("EXISTS", "user:gina"); got != "0" {
		t.Error("a throttled sign-up created the account")
	}
	wantStatus(t, "invalid input still gets its field error", registerFrom("192.0.2.5", "x", "short"), http.StatusUnprocessableEntity)
	wantStatus(t, "another address", registerFrom("198.51.100.5", "gina", "gina-password"), http.StatusSeeOther)
}

// A client hammering a limit gets a 429 each time but writes one log line a
// minute, which counts the refusals it stands for: a line per refusal would
// let any client fill the operator's disk.
func TestThrottleRefusalsAreLoggedOncePerMinute(t *testing.T) {
	ta := newTestApp(t, behindProxy)
	p := throttle.DefaultPolicy
	p.Signup = throttle.Limit{Max: 1, Window: time.Hour}
	ta.app.Throttle = throttle.New(newRedisClient(t, ta.redis), p)
	for i := range 30 {
		name := fmt.Sprintf("user%02d", i)
		r := ta.post(ta.client(), "/register", url.Values{"username": {name}, "password": {name + "-password"}}, "X-Forwarded-For", "192.0.2.7")
		if want := http.StatusTooManyRequests; i > 0 && r.status != want {
			t.Fatalf("sign-up %d: %d, want %d", i+1, r.status, want)
		}
	}
	if n := strings.Count(ta.logs.String(), `msg="sign-up throttled"`); n != 1 {
		t.Errorf("%d log lines for 29 refused sign-ups within a minute, want 1:\n%s", n, ta.logs.String())
	}
}

// A refusal line says what happened since the last one: how many refusals,
// from how many clients, and the clients refused most (three at most, as
// the limits count them: an IPv4 address, an IPv6 /64), not one client
// beside everyone's count as if it had made them all. Still a line a minute.
func TestThrottleRefusalLinesSayWhoWasRefused(t *testing.T) {
	ta := newTestApp(t, behindProxy)
	p := throttle.DefaultPolicy
	p.Signup = throttle.Limit{Max: 1, Window: time.Hour}
	ta.app.Throttle = throttle.New(newRedisClient(t, ta.redis), p)
	n := 0
	signUp := func(addr string, times, status int) {
		t.Helper()
		for range times {
			n++
			name := fmt.Sprintf("user%02d", n)
			r := ta.post(ta.client(), "/register", url.Values{"username": {name}, "password": {name + "-password"}}, "X-Forwarded-For", addr)
			wantStatus(t, "sign-up from "+addr, r, status)
		}
	}
	lines := func() []string {
		var ls []string
		for line := range strings.Lines(ta.logs.String()) {
			if lineHas(line, "sign-up throttled") {
				ls = append(ls, line)
			}
		}
		return ls
	}
	const passed, refused = http.StatusSeeOther, http.StatusTooManyRequests

	signUp("192.0.2.1", 1, passed)
	signUp("192.0.2.1", 1, refused)
	if ls := lines(); len(ls) != 1 || !lineHas(ls[0], "", "refused=1", "clients=1", `top="192.0.2.1 (1)"`) {
		t.Fatalf("after the first refusal, want one line with refused=1 clients=1 top=\"192.0.2.1 (1)\":\n%s", ta.logs.String())
	}
	signUp("192.0.2.1", 5, refused)
	signUp("2001:db8::1", 1, passed)
	signUp("2001:db8::1", 1, refused)
	signUp("2001:db8::2", 3, refused) // the same /64, one client to the limit
	signUp("198.51.100.1", 1, passed)
	signUp("198.51.100.1", 2, refused)
	signUp("198.51.100.2", 1, passed)
	if n := len(lines()); n != 1 {
		t.Fatalf("%d lines within the minute, want 1:\n%s", n, ta.logs.String())
	}
	ta.app.tallies.backdate("sign-up throttled", perMinuteEvery)
	signUp("198.51.100.2", 1, refused)
	ls := lines()
	if len(ls) != 2 {
		t.Fatalf("%d lines a minute later, want 2:\n%s", len(ls), ta.logs.String())
	}
	// Not 13 and 6: the first line's refusal is not counted again.
	if want := []string{"refused=12", "clients=4", `top="192.0.2.1 (5), 2001:db8::/64 (4), 198.51.100.1 (2)"`}; !lineHas(ls[1], "", want...) {
		t.Errorf("second line:\n%s\nwant %v", ls[1], want)
	}
	for _, l := range ls {
		if strings.Contains(l, " client=") {
			t.Errorf("a line names one client as if it stood for all:\n%s", l)
		}
	}
}

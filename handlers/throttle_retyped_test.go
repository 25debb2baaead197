package handlers

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/sessionstack"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// The throttle's counters are the app's own, and students edit keys with
// redis-cli: a counter holding another type of value, or a value INCR
// cannot count, does not fail every login, sign-up or password check it
// limits (for everyone behind the address, and with no expiry to end it
// after SET): it is reset, the attempt counted afresh with its window, and
// a WARN names the key.

// handEdits are what a student might write over a counter.
var handEdits = []struct {
	name string
	do   func(ta *testApp, key string)
}{
	{"a hash", func(ta *testApp, key string) {
		ta.redis.MustDo("DEL", key)
		ta.redis.MustDo("HSET", key, "edited", "by hand")
	}},
	{"garbage", func(ta *testApp, key string) { ta.redis.MustDo("SET", key, "garbage") }},
	{"a fraction", func(ta *testApp, key string) { ta.redis.MustDo("SET", key, "1.5") }},
}

// wantCounter fails unless key holds want with an expiry of at most window.
func wantCounter(t *testing.T, ta *testApp, key, want string, window time.Duration) {
	t.Helper()
	if got := ta.redis.MustDo("TYPE", key); got != "string" {
		t.Errorf("%s is a %s, want a string counter", key, got)
		return
	}
	if got := ta.redis.MustDo("GET", key); got != want {
		t.Errorf("%s holds %q, want %q", key, got, want)
	}
	if ttl, _ := strconv.Atoi(ta.redis.MustDo("PTTL", key)); ttl <= 0 || ttl > int(window.Milliseconds()) {
		t.Errorf("%s: PTTL %d, want 1..%d ms", key, ttl, window.Milliseconds())
	}
}

// wantPendingSane fails unless a pending counter is gone or a number that
// expires within seconds.
func wantPendingSane(t *testing.T, ta *testApp, key string) {
	t.Helper()
	switch ta.redis.MustDo("TYPE", key) {
	case "none":
	case "string":
		if v := ta.redis.MustDo("GET", key); v != "0" {
			t.Errorf("%s holds %q after the attempt settled, want 0", key, v)
		}
		if ttl, _ := strconv.Atoi(ta.redis.MustDo("PTTL", key)); ttl <= 0 || ttl > 3000 {
			t.Errorf("%s: PTTL %d, want 1..3000 ms", key, ttl)
		}
	default:
		t.Errorf("%s is a %s after the attempt", key, ta.redis.MustDo("TYPE", key))
	}
}

// wantResetLogged fails unless the log has a WARN naming key as reset, and
// nothing at ERROR.
func wantResetLogged(t *testing.T, ta *testApp, key string) {
	t.Helper()
	logs := ta.logs.String()
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, `msg="throttle counter reset`) &&
			(strings.HasSuffix(line, " key="+key) || strings.Contains(line, " key="+key+" ")) {
			goto found
		}
	}
	t.Errorf("no WARN saying %s was reset:\n%s", key, logs)
found:
	if strings.Contains(logs, "level=ERROR") {
		t.Errorf("an ERROR was logged:\n%s", logs)
	}
}

func TestALoginCounterEditedByHandIsReset(t *testing.T) {
	p := throttle.DefaultPolicy
	ta := newTestApp(t, behindProxy)
	n := 0
	for _, kind := range []throttle.Kind{throttle.KindAddress, throttle.KindPair, throttle.KindAccount} {
		for _, pending := range []bool{false, true} {
			for _, edit := range handEdits {
				n++
				user, addr := "user"+strconv.Itoa(n), "192.0.2."+strconv.Itoa(100+n)
				ip := netip.MustParseAddr(addr)
				counters := map[string]time.Duration{
					throttle.Key(throttle.KindAddress, user, ip): p.Address.Window,
					throttle.Key(throttle.KindPair, user, ip):    p.Pair.Window,
					throttle.Key(throttle.KindAccount, user, ip): p.Account.Window,
				}
				key := throttle.Key(kind, user, ip)
				if pending {
					key = throttle.Pending(key)
				}
				t.Run(key+" set to "+edit.name, func(t *testing.T) {
					ta.register(ta.client(), user, user+"-password")
					edit.do(ta, key)

					r := ta.loginFrom(addr, user, "wrong-password")
					if r.status != http.StatusUnauthorized || !strings.Contains(r.body, `data-testid="login-form"`) {
						t.Fatalf("a wrong password after the edit: %d, want 401 on the login form:\n%s", r.status, r.body)
					}
					for k, window := range counters {
						wantCounter(t, ta, k, "1", window)
						wantPendingSane(t, ta, throttle.Pending(k))
					}
					wantResetLogged(t, ta, key)

					wantStatus(t, "the right password", ta.loginFrom(addr, user, user+"-password"), http.StatusSeeOther)
				})
			}
		}
	}

	// A pending counter with no expiry (SET without PX) and past the limit
	// would hold every login from the address for seconds, then refuse it.
	t.Run("a pending counter past the limit with no expiry", func(t *testing.T) {
		const addr = "192.0.2.99"
		ta.register(ta.client(), "pendy", "pendy-password")
		key := throttle.Pending(throttle.Key(throttle.KindAddress, "", netip.MustParseAddr(addr)))
		ta.redis.MustDo("SET", key, strconv.Itoa(p.Address.Max))
		start := time.Now()
		wantStatus(t, "a login", ta.loginFrom(addr, "pendy", "pendy-password"), http.StatusSeeOther)
		if d := time.Since(start); d > time.Second {
			t.Errorf("the login took %v, waiting on attempts that were never in flight", d)
		}
		wantPendingSane(t, ta, key)
		wantResetLogged(t, ta, key)
	})

	// The mark of a known address holds no number: any type is a mark.
	t.Run("a known address's mark set to a hash", func(t *testing.T) {
		const addr = "192.0.2.98"
		ta.register(ta.client(), "knowy", "knowy-password")
		key := throttle.Key(throttle.KindKnown, "knowy", netip.MustParseAddr(addr))
		ta.redis.MustDo("HSET", key, "edited", "by hand")
		wantStatus(t, "a wrong password", ta.loginFrom(addr, "knowy", "wrong-password"), http.StatusUnauthorized)
		wantStatus(t, "the right password", ta.loginFrom(addr, "knowy", "knowy-password"), http.StatusSeeOther)
		wantCounter(t, ta, key, "1", p.Known)
	})

	// A reset counts the attempt afresh, and nothing more: the limit holds
	// exactly as it would without the edit.
	t.Run("a reset counter still limits", func(t *testing.T) {
		const addr, user = "192.0.2.97", "limy"
		ta.register(ta.client(), user, user+"-password")
		key := throttle.Key(throttle.KindPair, user, netip.MustParseAddr(addr))
		ta.redis.MustDo("HSET", key, "edited", "by hand")
		for i := range p.Pair.Max {
			wantStatus(t, "wrong password #"+strconv.Itoa(i+1), ta.loginFrom(addr, user, "wrong-password"), http.StatusUnauthorized)
		}
		wantThrottled(t, "one more", ta.loginFrom(addr, user, user+"-password"), int(p.Pair.Window.Seconds()))
		wantCounter(t, ta, key, strconv.Itoa(p.Pair.Max), p.Pair.Window)
	})
}

func TestASignupCounterEditedByHandIsReset(t *testing.T) {
	p := throttle.DefaultPolicy
	ta := newTestApp(t, behindProxy)
	for i, edit := range handEdits {
		addr := "192.0.2." + strconv.Itoa(120+i)
		key := throttle.Key(throttle.KindSignup, "", netip.MustParseAddr(addr))
		t.Run(key+" set to "+edit.name, func(t *testing.T) {
			edit.do(ta, key)
			name := "signy" + strconv.Itoa(i)
			r := ta.post(ta.client(), "/register", url.Values{"username": {name}, "password": {name + "-password"}},
				"X-Forwarded-For", addr)
			wantStatus(t, "sign-up after the edit", r, http.StatusSeeOther)
			if got := ta.redis.MustDo("EXISTS", "user:"+name); got != "1" {
				t.Errorf("the account was not created")
			}
			wantCounter(t, ta, key, "1", p.Signup.Window)
			wantResetLogged(t, ta, key)
		})
	}
}

func TestAPasswordCheckCounterEditedByHandIsReset(t *testing.T) {
	p := throttle.DefaultPolicy
	ta := newTestApp(t)
	change := func(c *http.Client, current, next string) response {
		t.Helper()
		return ta.post(c, "/password", url.Values{"current": {current}, "new": {next}})
	}
	// What a wrong current password answers without an edit.
	control := ta.client()
	ta.register(control, "control", "control-password")
	want := change(control, "wrong-password", "control-password-2")
	if want.status == http.StatusInternalServerError {
		t.Fatalf("a wrong current password without an edit: %d", want.status)
	}
	n := 0
	for _, pending := range []bool{false, true} {
		for _, edit := range handEdits {
			n++
			user := "passy" + strconv.Itoa(n)
			t.Run(strconv.FormatBool(pending)+" "+edit.name, func(t *testing.T) {
				c := ta.client()
				ta.register(c, user, user+"-password")
				counter := throttle.SessionKey(sessions.ID(ta.token(c)))
				key := counter
				if pending {
					key = throttle.Pending(counter)
				}
				edit.do(ta, key)

				r := change(c, "wrong-password", user+"-password-2")
				if r.status != want.status || !strings.Contains(r.body, "That is not your current password.") {
					t.Fatalf("a wrong current password after editing %s: %d, want %d saying so:\n%s", key, r.status, want.status, r.body)
				}
				wantCounter(t, ta, counter, "1", p.Pair.Window)
				wantPendingSane(t, ta, throttle.Pending(counter))
				wantCounter(t, ta, throttle.Key(throttle.KindAccount, user, netip.Addr{}), "1", p.Account.Window)
				wantResetLogged(t, ta, key)

				wantStatus(t, "the right current password", change(c, user+"-password", user+"-password-2"), http.StatusSeeOther)
			})
		}
	}
}

// A new anonymous session is counted by the browsers script (GET /count),
// or with -store memory on its own: neither fails on an edited counter.
func TestANewSessionCounterEditedByHandIsReset(t *testing.T) {
	p := throttle.DefaultPolicy
	for _, mode := range []sessionstack.Mode{sessionstack.Redis, sessionstack.Memory} {
		rs := redistest.Start(t)
		ta := wireTestApp(t, rs, testConfig(rs, mode), behindProxy).serve()
		for i, edit := range handEdits {
			addr := "192.0.2." + strconv.Itoa(130+i)
			key := throttle.Key(throttle.KindNewSession, "", netip.MustParseAddr(addr))
			t.Run(string(mode)+" "+key+" set to "+edit.name, func(t *testing.T) {
				edit.do(ta, key)
				r := ta.get(ta.client(), "/count", "X-Forwarded-For", addr)
				wantStatus(t, "a new session's count after the edit", r, http.StatusOK)
				if got := countShown(t, r.body); got != "1" {
					t.Errorf("the count shows %s, want 1", got)
				}
				wantCounter(t, ta, key, "1", p.Anonymous.Window)
				if mode == sessionstack.Memory { // the browsers script (internal/sessions) reports no reset
					wantResetLogged(t, ta, key)
				}
			})
		}
	}
}

package handlers

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// Password hashing has a few slots (accounts.Hashing), so a flood of right
// passwords, which no login limit counts, cannot take every CPU from the
// pages. A login, sign-up or password change that finds them taken for the
// gate's whole wait answers 503 with Retry-After and says its password was
// not checked; it counts no failure, changes nothing, and the next one once a
// slot is free goes through.
func TestAPasswordCheckThatGetsNoHashingSlotChangesNothing(t *testing.T) {
	var store *accounts.Store
	ta := newTestApp(t, behindProxy, func(a *App) { store = a.Accounts.(*accounts.Store) })
	c := ta.client()
	ta.register(c, "una", "una-password")
	tok := ta.token(c)
	store.Hashing = accounts.NewHashing(1, 50*time.Millisecond)
	_, release, err := store.Hashing.Hold(context.Background()) // as checks in flight hold them
	if err != nil {
		t.Fatal(err)
	}

	wantBusy := func(what string, r response) {
		t.Helper()
		wantStatus(t, what, r, http.StatusServiceUnavailable)
		if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 {
			t.Errorf("%s: Retry-After %q, want whole seconds", what, r.header.Get("Retry-After"))
		}
		if !strings.Contains(r.body, "was not checked") || !strings.Contains(r.body, "nothing was changed") {
			t.Errorf("%s: the page does not say the password was not checked and nothing was changed:\n%s", what, r.body)
		}
	}
	for i := range 2 * throttle.DefaultPolicy.Pair.Max {
		wantBusy("wrong password #"+strconv.Itoa(i+1), ta.loginFrom("192.0.2.40", "una", "wrong-password"))
	}
	wantBusy("the right password", ta.post(c, "/login", url.Values{"username": {"una"}, "password": {"una-password"}}))
	if got := ta.token(c); got != tok {
		t.Error("a login that was not checked renewed the session's token")
	}
	wantBusy("a sign-up", ta.post(ta.client(), "/register", url.Values{"username": {"vic"}, "password": {"vic-password"}}))
	wantBusy("a password change", ta.post(c, "/password", url.Values{"current": {"una-password"}, "new": {"una-new-password"}}))
	if got, want := metricValue(t, ta, `sessionlab_logins_total{outcome="busy"}`), strconv.Itoa(2*throttle.DefaultPolicy.Pair.Max+1); got != want {
		t.Errorf(`sessionlab_logins_total{outcome="busy"} = %q, want %s (every login refused)`, got, want)
	}
	if !strings.Contains(ta.logs.String(), "password check refused: every hashing slot was taken") {
		t.Errorf("no log line tells the operator the checks were refused:\n%s", ta.logs.String())
	}

	release()
	wantStatus(t, "the right password from the guessing address, once a slot is free (no failure was counted)",
		ta.loginFrom("192.0.2.40", "una", "una-password"), http.StatusSeeOther)
	wantStatus(t, "the old password still works for the first browser (the change was not made)",
		ta.post(ta.client(), "/login", url.Values{"username": {"una"}, "password": {"una-password"}}), http.StatusSeeOther)
	wantStatus(t, "vic (the sign-up was not made)", ta.post(ta.client(), "/login", url.Values{"username": {"vic"}, "password": {"vic-password"}}),
		http.StatusUnauthorized)
	wantStatus(t, "the first browser is still logged in", ta.get(c, "/profile"), http.StatusOK)
}

// Guesses waiting their turn for a hashing slot stay counted in flight,
// however long they wait: the throttle forgets a mark after 3 s unless it is
// kept alive, and parallel guesses would then slip past the limit.
func TestGuessesWaitingForAHashingSlotStillCountAgainstTheLimit(t *testing.T) {
	var store *accounts.Store
	ta := newTestApp(t, behindProxy, func(a *App) { store = a.Accounts.(*accounts.Store) })
	ta.register(ta.client(), "wes", "wes-password")
	store.Hashing = accounts.NewHashing(1, time.Minute)
	_, release, err := store.Hashing.Hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const guesses = 8
	max := throttle.DefaultPolicy.Pair.Max
	got := make([]response, guesses)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = ta.loginFrom("192.0.2.41", "wes", "guess-"+strconv.Itoa(i)) })
	}
	time.Sleep(4500 * time.Millisecond) // past the 3 s a mark lives unrefreshed
	release()
	wg.Wait()
	byStatus := map[int]int{}
	for _, r := range got {
		byStatus[r.status]++
	}
	if byStatus[http.StatusUnauthorized] != max || byStatus[http.StatusTooManyRequests] != guesses-max {
		t.Errorf("%d parallel guesses, held up by a busy hashing slot: %v by status, want %d checked (401) and %d refused (429)",
			guesses, byStatus, max, guesses-max)
	}
	if n := ta.redis.MustDo("GET", "login:fail:pair:wes:192.0.2.41"); n != strconv.Itoa(max) {
		t.Errorf("failures counted: %s, want %d", n, max)
	}
}

// Logins while Redis hangs each fail at their own time with the outage's
// 503: a login holds its hashing slot only while it compares, never while it
// waits for Redis, so a hang does not line them up behind one another.
func TestLoginsWhileRedisHangsAreNotLinedUpForTheHashingSlot(t *testing.T) {
	ta := newTestApp(t)
	ta.register(ta.client(), "xia", "xia-password")
	ta.redis.Block("CLIENT", "PAUSE", "5000")
	const logins = 6 // one after another, the last would wait 5 request budgets
	hits := make([]hit, logins)
	var wg sync.WaitGroup
	for i := range hits {
		wg.Go(func() {
			hits[i] = fetch(ta.client(), ta.srv.URL+"/login", url.Values{"username": {"xia"}, "password": {"xia-password"}})
		})
	}
	wg.Wait()
	for i, h := range hits {
		switch {
		case h.err != nil:
			t.Errorf("login %d: %v after %v", i, h.err, h.elapsed)
		case h.status != http.StatusServiceUnavailable || !strings.Contains(h.body, `data-testid="problem-title">Session store unavailable<`):
			t.Errorf("login %d: %d, want the outage's 503 page\n%s", i, h.status, h.body)
		case h.elapsed > outageBound:
			t.Errorf("login %d answered after %v, want within %v", i, h.elapsed, outageBound)
		}
	}
	ta.redis.WaitAnswering()
}

// Right passwords held up in flight are refused, past the throttle's wait,
// with words that say so, not as failed logins: none failed.
func TestLoginsHeldUpInFlightAreNotCalledFailedLogins(t *testing.T) {
	var store *accounts.Store
	ta := newTestApp(t, behindProxy, func(a *App) { store = a.Accounts.(*accounts.Store) })
	ta.register(ta.client(), "yan", "yan-password")
	store.Hashing = accounts.NewHashing(1, time.Minute)
	_, release, err := store.Hashing.Hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	max := throttle.DefaultPolicy.Pair.Max
	got := make([]response, max+2) // a class's double clicks, or a flood
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = ta.loginFrom("192.0.2.42", "yan", "yan-password") })
	}
	time.Sleep(4500 * time.Millisecond) // past the throttle's wait for attempts in flight
	release()
	wg.Wait()
	refused := 0
	for i, r := range got {
		switch r.status {
		case http.StatusSeeOther:
		case http.StatusTooManyRequests:
			refused++
			if strings.Contains(r.body, "failed logins") || !strings.Contains(r.body, "being checked at once") {
				t.Errorf("login %d refused while others were in flight: the form does not say so\n%s", i, r.body)
			}
		default:
			t.Errorf("login %d: %d, want 303 or 429", i, r.status)
		}
	}
	if refused != 2 {
		t.Errorf("%d of %d right passwords at once refused, want 2 (the pair limit lets %d in flight)", refused, len(got), max)
	}
}

// Only a sign-up whose password is hashed counts against its address's
// limit: one refused because every hashing slot was taken is taken back, so
// a class signing up while someone floods logins is not locked out for the
// hour by sign-ups that never happened. One that got its slot still counts.
func TestASignUpThatGetsNoHashingSlotIsNotCounted(t *testing.T) {
	var store *accounts.Store
	ta := newTestApp(t, behindProxy, func(a *App) { store = a.Accounts.(*accounts.Store) })
	const addr = "192.0.2.41"
	key := throttle.Key(throttle.KindSignup, "", netip.MustParseAddr(addr))
	signUp := func(name string) response {
		return ta.post(ta.client(), "/register", url.Values{"username": {name}, "password": {name + "-password"}}, "X-Forwarded-For", addr)
	}
	wantStatus(t, "a first sign-up", signUp("xia"), http.StatusSeeOther)
	if got := ta.redis.MustDo("GET", key); got != "1" {
		t.Fatalf("%s = %q after one sign-up, want 1", key, got)
	}
	store.Hashing = accounts.NewHashing(1, 50*time.Millisecond)
	_, release, err := store.Hashing.Hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		wantStatus(t, "sign-up "+strconv.Itoa(i+2)+" with every slot taken", signUp("yan"+strconv.Itoa(i)), http.StatusServiceUnavailable)
	}
	if got := ta.redis.MustDo("GET", key); got != "1" {
		t.Errorf("%s = %q after three sign-ups refused for a hashing slot, want 1 (only the one made)", key, got)
	}
	if ttl := ta.redis.MustDo("PTTL", key); strings.HasPrefix(ttl, "-") {
		t.Errorf("%s lost its window's expiry (PTTL %s)", key, ttl)
	}
	release()
	wantStatus(t, "a sign-up once a slot is free", signUp("zed"), http.StatusSeeOther)
	if got := ta.redis.MustDo("GET", key); got != "2" {
		t.Errorf("%s = %q, want 2", key, got)
	}
}

// waitingChange is the real account store whose password change, once
// hashed, waits on Redis until the test lets it go (as a hung Redis holds it).
type waitingChange struct {
	accountStore
	entered, proceed chan struct{}
}

func (w waitingChange) SetPassword(ctx context.Context, username string, p accounts.NewPassword) (string, error) {
	close(w.entered)
	<-w.proceed
	return w.accountStore.SetPassword(ctx, username, p)
}

// A password change holds no hashing slot while it waits on Redis: one that
// did held up every login behind a hung Redis for its own Redis budget, and
// then each login's (2.5-2.9 s, where every request answers within 2 s).
func TestAPasswordChangeHoldsNoHashingSlotWhileItWaitsOnRedis(t *testing.T) {
	var store *accounts.Store
	wc := waitingChange{entered: make(chan struct{}), proceed: make(chan struct{})}
	ta := newTestApp(t, func(a *App) {
		store = a.Accounts.(*accounts.Store)
		store.Hashing = accounts.NewHashing(1, time.Second) // the only slot
		wc.accountStore = a.Accounts
		a.Accounts = wc
	})
	c := ta.client()
	ta.register(c, "vera", "vera-password")
	done := make(chan response, 1)
	go func() {
		done <- ta.post(c, "/password", url.Values{"current": {"vera-password"}, "new": {"brand-new-password"}})
	}()
	select {
	case <-wc.entered:
	case r := <-done:
		t.Fatalf("the change answered %d before it reached its Redis work", r.status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	release, err := store.Hashing.Acquire(ctx)
	cancel()
	if err != nil {
		t.Errorf("a login's hash waiting while the change waits on Redis: %v, want the slot at once", err)
	} else {
		release()
	}
	close(wc.proceed)
	if r := <-done; r.status != http.StatusSeeOther {
		t.Errorf("the change: %d, want 303", r.status)
	}
}

package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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

// A login takes its hashing slot before its limit check, so one waiting for a
// slot is not counted in flight: the throttle forgets an attempt in flight
// after 3 s, and a class's queue of logins can wait longer than that.
func TestALoginWaitingForAHashingSlotIsNotCountedInFlight(t *testing.T) {
	var store *accounts.Store
	ta := newTestApp(t, behindProxy, func(a *App) { store = a.Accounts.(*accounts.Store) })
	ta.register(ta.client(), "wes", "wes-password")
	store.Hashing = accounts.NewHashing(1, time.Minute)
	_, release, err := store.Hashing.Hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan response, 1)
	go func() { done <- ta.loginFrom("192.0.2.41", "wes", "wes-password") }()
	pending := throttle.Pending("login:fail:pair:wes:192.0.2.41")
	for range 20 {
		time.Sleep(10 * time.Millisecond)
		if got := ta.redis.MustDo("EXISTS", pending); got != "0" {
			t.Fatalf("a login waiting for its hashing slot is counted in flight (%s exists)", pending)
		}
	}
	select {
	case r := <-done:
		t.Fatalf("the login was answered (%d) while the only slot was held", r.status)
	default:
	}
	release()
	wantStatus(t, "the login once the slot is free", <-done, http.StatusSeeOther)
}

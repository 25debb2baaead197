package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// The limits on what renews a session at a logged-in client's will, as
// docs/security.md states them: every such request writes audit lines
// ("session renewed" and its own), so without a limit a client could write
// them at will.
const (
	revokeOthersLimit  = 5 // "log out everywhere else", per account
	revokeOthersWindow = 5 * time.Minute
	labSwitchLimit     = 30 // lab switches (-lab), per session
	labSwitchWindow    = time.Minute
)

// countingGenerations is the account store counting the credential
// generations it made (NewGeneration: "log out everywhere else").
type countingGenerations struct {
	accountStore
	made *atomic.Int64
}

func (s countingGenerations) NewGeneration(ctx context.Context, username string) (string, error) {
	gen, err := s.accountStore.NewGeneration(ctx, username)
	if err == nil {
		s.made.Add(1)
	}
	return gen, err
}

// sameSite are the headers a browser sends with a form posted from this
// site (Go's CrossOriginProtection lets it through).
func (ta *testApp) sameSite(headers ...string) []string {
	return append([]string{"Sec-Fetch-Site", "same-origin", "Origin", ta.srv.URL}, headers...)
}

// logLinesSince are the log lines written after the first n bytes.
func (ta *testApp) logLinesSince(n int) []string {
	var lines []string
	for line := range strings.Lines(ta.logs.String()[n:]) {
		lines = append(lines, line)
	}
	return lines
}

// wantLines fails unless lines are exactly want lines of each msg, and no
// other line.
func wantLines(t *testing.T, lines []string, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, l := range lines {
		known := false
		for msg := range want {
			if lineHas(l, msg) {
				got[msg]++
				known = true
			}
		}
		if !known {
			t.Errorf("an unexpected line: %s", l)
		}
	}
	for msg, n := range want {
		if got[msg] != n {
			t.Errorf("%d lines %q, want %d:\n%s", got[msg], msg, n, strings.Join(lines, ""))
		}
	}
}

// wantRetryAfter fails unless r says to retry within the window.
func wantRetryAfter(t *testing.T, what string, r response, window time.Duration) {
	t.Helper()
	if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 || secs > int(window.Seconds()) {
		t.Errorf("%s: Retry-After %q, want 1..%d seconds", what, r.header.Get("Retry-After"), int(window.Seconds()))
	}
}

// "Log out everywhere else" renews this session's token, gives the account
// a new credential generation, walks its list of sessions and writes two
// audit lines, so one logged-in browser must not be able to send it at
// will: past 5 in 5 minutes for an account it answers 429 on the sessions
// page (the list alone for the page's script), with Retry-After, and
// changes nothing; the refusals are a line a minute, not a line each.
// Another account is not affected.
func TestLogOutEverywhereElseIsLimitedPerAccount(t *testing.T) {
	var made atomic.Int64
	ta := newTestApp(t, func(a *App) { a.Accounts = countingGenerations{a.Accounts, &made} })
	laptop, phone, other := ta.client(), ta.client(), ta.client()
	ta.register(laptop, "ann", "ann-password")
	ta.register(other, "ben", "ben-password")
	ta.login(phone, "ann", "ann-password")

	from := len(ta.logs.String())
	for i := range revokeOthersLimit {
		r := ta.post(laptop, "/sessions/revoke-others", nil, ta.sameSite()...)
		wantStatus(t, "log out everywhere else #"+strconv.Itoa(i+1), r, http.StatusSeeOther)
	}
	if n := made.Load(); n != revokeOthersLimit {
		t.Fatalf("%d generations made by %d requests, want %d", n, revokeOthersLimit, revokeOthersLimit)
	}
	wantLines(t, ta.logLinesSince(from), map[string]int{
		"other sessions revoked": revokeOthersLimit,
		"session renewed":        revokeOthersLimit,
	})

	ta.login(phone, "ann", "ann-password") // a session a refused request must not end
	token := ta.token(laptop)
	from = len(ta.logs.String())
	const words = "Logging out everywhere else is paused for your account"
	r := ta.post(laptop, "/sessions/revoke-others", nil, ta.sameSite()...)
	wantStatus(t, "one more", r, http.StatusTooManyRequests)
	wantRetryAfter(t, "one more", r, revokeOthersWindow)
	if !strings.Contains(r.body, `data-testid="revoke-others-refused"`) || !strings.Contains(r.body, words) ||
		!strings.Contains(r.body, `data-testid="session-list"`) || !strings.Contains(r.body, "<html") {
		t.Errorf("the refusal is not the sessions page saying why:\n%s", r.body)
	}
	r = ta.post(laptop, "/sessions/revoke-others", nil, ta.sameSite("HX-Request", "true", "HX-Target", views.IDSessionList)...)
	wantStatus(t, "one more, from the page's script", r, http.StatusTooManyRequests)
	wantRetryAfter(t, "one more, from the page's script", r, revokeOthersWindow)
	if !strings.Contains(r.body, `<div id="session-list"`) || !strings.Contains(r.body, words) ||
		strings.Contains(r.body, "<html") || strings.Contains(r.body, "<h1>") {
		t.Errorf("htmx did not get the list, saying why, to put in place of the list:\n%s", r.body)
	}
	wantStatus(t, "and one more", ta.post(laptop, "/sessions/revoke-others", nil, ta.sameSite()...), http.StatusTooManyRequests)

	if n := made.Load(); n != revokeOthersLimit {
		t.Errorf("refused requests changed the account: %d generations, want %d", n, revokeOthersLimit)
	}
	if ta.token(laptop) != token {
		t.Error("a refused request renewed the session's token")
	}
	if r := ta.get(phone, "/profile"); r.status != http.StatusOK {
		t.Errorf("a refused request ended the other session: %d", r.status)
	}
	// Three refusals: one line (the first at once, the rest at the end of
	// the minute), and no audit line.
	wantLines(t, ta.logLinesSince(from), map[string]int{"log out everywhere else throttled": 1})

	t.Run("another account is not affected", func(t *testing.T) {
		before := made.Load()
		wantStatus(t, "ben logs out everywhere else", ta.post(other, "/sessions/revoke-others", nil, ta.sameSite()...), http.StatusSeeOther)
		if made.Load() != before+1 {
			t.Error("ben's account got no new generation")
		}
	})
}

// A lab switch (-lab) renews the session's token and writes two audit
// lines, so one session must not flip them at will: past 30 in a minute it
// answers 429 saying why, with Retry-After, and changes nothing (no
// renewal, the switch as it was); the refusals are a line a minute.
// Another session, even from the same browser's address, is not affected.
func TestLabSwitchesAreLimitedPerSession(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true })
	c := ta.client()
	ta.anonymousSession(c)

	from := len(ta.logs.String())
	for i := range labSwitchLimit {
		on := strconv.Itoa(i % 2) // off, on, off...
		r := ta.post(c, "/lab/switch/httponly", url.Values{"on": {on}}, ta.sameSite()...)
		wantStatus(t, "lab switch #"+strconv.Itoa(i+1), r, http.StatusSeeOther)
	}
	wantLines(t, ta.logLinesSince(from), map[string]int{
		"lab switch":      labSwitchLimit,
		"session renewed": labSwitchLimit,
	})

	token := ta.token(c)
	from = len(ta.logs.String())
	const words = "Lab switches are paused for this session"
	r := ta.post(c, "/lab/switch/httponly", url.Values{"on": {"0"}}, ta.sameSite()...)
	wantStatus(t, "one more", r, http.StatusTooManyRequests)
	wantRetryAfter(t, "one more", r, labSwitchWindow)
	if !strings.Contains(r.body, words) || !strings.Contains(r.body, "<html") {
		t.Errorf("the refusal is not a page saying why:\n%s", r.body)
	}
	if !strings.Contains(r.body, `<a href="/lab" data-testid="problem-back">`) {
		t.Errorf("the refusal does not link back to the lab, where the experiment was:\n%s", r.body)
	}
	r = ta.post(c, "/lab/switch/renewal", url.Values{"on": {"0"}}, ta.sameSite("HX-Request", "true")...)
	wantStatus(t, "one more, as htmx", r, http.StatusTooManyRequests)
	wantRetryAfter(t, "one more, as htmx", r, labSwitchWindow)
	if !strings.Contains(r.body, words) || strings.Contains(r.body, "<html") {
		t.Errorf("htmx did not get a fragment saying why:\n%s", r.body)
	}
	wantStatus(t, "and one more", ta.post(c, "/lab/switch/httponly", url.Values{"on": {"0"}}, ta.sameSite()...), http.StatusTooManyRequests)

	if ta.token(c) != token {
		t.Error("a refused switch renewed the session's token")
	}
	if v := ta.redis.MustDo("GET", sessions.Key(token)); strings.Contains(v, "no_httponly\":true") || strings.Contains(v, "no_renewal\":true") {
		t.Errorf("a refused switch weakened the session:\n%s", v)
	}
	wantLines(t, ta.logLinesSince(from), map[string]int{"lab switch throttled": 1})

	t.Run("another session is not affected", func(t *testing.T) {
		d := ta.client()
		ta.anonymousSession(d)
		wantStatus(t, "another session's switch", ta.post(d, "/lab/switch/httponly", url.Values{"on": {"0"}}, ta.sameSite()...), http.StatusSeeOther)
	})
}

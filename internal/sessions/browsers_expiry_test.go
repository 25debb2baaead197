package sessions

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// An address's two keys outlive the window after every count that wrote
// them, however they came to be (a count that made either, a count that
// found them about to expire, a login that moved the only row), and last at
// most BrowsersExpiry.
func TestBrowsersKeysOutliveTheWindow(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	o := NewOps(rs.Client(t))
	ctx := context.Background()
	const addr = "192.0.2.12"
	keys := []string{BrowsersKey(addr), BrowsersSeenKey(addr)}
	count := func(token string) {
		t.Helper()
		if _, _, err := o.NewBrowser(ctx, token, 1, Visit{Addr: addr}, throttle.Step{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	expiries := func(what string, low, high time.Duration) {
		t.Helper()
		for _, k := range keys {
			ms, _ := strconv.ParseInt(rs.MustDo("PTTL", k), 10, 64)
			if d := time.Duration(ms) * time.Millisecond; d <= low || d > high {
				t.Errorf("%s: %s expires in %v, want in (%v, %v]", what, k, d, low, high)
			}
		}
	}
	outlive := func(what string) { t.Helper(); expiries(what, BrowsersWindow-time.Second, BrowsersExpiry) }
	setExpiry := func(k string, d time.Duration) {
		rs.MustDo("PEXPIRE", k, strconv.FormatInt(d.Milliseconds(), 10))
	}

	count("first")
	outlive("a new browser")
	for _, k := range keys {
		setExpiry(k, BrowsersWindow-time.Second) // as a minute of counts later
	}
	count("first")
	outlive("a count with less than the window left")
	for _, k := range keys {
		setExpiry(k, BrowsersWindow+30*time.Second)
	}
	count("first")
	expiries("a count with more than the window left", BrowsersWindow+29*time.Second, BrowsersWindow+30*time.Second)
	rs.MustDo("DEL", BrowsersKey(addr)) // as an eviction
	count("first")
	outlive("a count that made the hash again")
	rs.MustDo("DEL", BrowsersSeenKey(addr))
	count("first")
	outlive("a count that made the set again")
	for _, k := range keys {
		setExpiry(k, BrowsersWindow+30*time.Second)
	}
	count("second")
	expiries("a new browser beside another, more than the window left", BrowsersWindow+29*time.Second, BrowsersWindow+30*time.Second)
	rs.MustDo("DEL", BrowsersKey(addr))
	count("third")
	outlive("a new browser that made the hash again beside others in the window")
	rs.MustDo("DEL", BrowsersSeenKey(addr))
	count("fourth")
	outlive("a new browser that made the set again beside others' rows")
	rs.MustDo("DEL", BrowsersKey(addr), BrowsersSeenKey(addr))
	count("first")
	if err := o.MoveBrowser(ctx, "first", "renewed", 2, Visit{Addr: addr}); err != nil {
		t.Fatal(err)
	}
	outlive("a login that moved the only row")
	if rs.MustDo("HEXISTS", BrowsersKey(addr), ID("renewed")) != "1" || rs.MustDo("ZCARD", BrowsersSeenKey(addr)) != "1" {
		t.Error("the row did not move")
	}
}

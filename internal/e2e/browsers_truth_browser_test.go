package e2e

import (
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// With more browsers on the computer than the list holds, this browser's
// own row stays on its page (marked "This browser"), and the list says how
// many it leaves out: eleven others counted after it, so ten are listed,
// then this one, and one more is named by number only.
func TestBrowserThisBrowserIsAlwaysListed(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	chrome := newBrowser(t)
	chrome.open(s.url("/count"))
	chrome.waitText("view-count", "1")
	waitStreams(t, s.app, 1) // what the others' counts publish reaches this page

	for range 11 {
		if status, _ := apptest.Get(t, apptest.Client(t), s.url("/count")); status != http.StatusOK {
			t.Fatalf("another browser's count: %d", status)
		}
	}
	chrome.waitFor("eleven rows, this browser's among them, and one more by number", `
		document.querySelectorAll('[data-testid=browser-row]').length === 11 &&
		document.querySelector('[data-this] [data-testid=this-browser]') !== null &&
		document.querySelector('[data-this] [data-testid=browser-views]').textContent.trim() === '1' &&
		/^and 1 more browser\b/.test(document.querySelector('[data-testid=browsers-more]')?.textContent.replace(/\s+/g, ' ').trim() ?? '')`)
}

// The counter and this browser's row in the list say the same count at
// every moment the page is in: a click's answer and the live stream change
// both at once (the list itself is sent at most once a second). Every
// change to the page is recorded as it happens.
func TestBrowserThisBrowsersRowMovesWithTheCounter(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	chrome := newBrowser(t)
	chrome.open(s.url("/count"))
	chrome.waitText("view-count", "1")
	waitStreams(t, s.app, 1)
	eval[bool](chrome, `(() => {
		window.seen = [];
		const record = () => {
			const row = document.querySelector('[data-this] [data-testid=browser-views]');
			window.seen.push([document.querySelector('[data-testid=view-count]').textContent.trim(), row ? row.textContent.trim() : 'no row']);
		};
		new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
		return true;
	})()`)
	for n := 2; n <= 5; n++ {
		chrome.count(n)
	}
	chrome.waitFor("the row at 5", `document.querySelector('[data-this] [data-testid=browser-views]')?.textContent.trim() === '5'`)
	if bad := eval[[][]string](chrome, `window.seen.filter(([counter, row]) => counter !== row)`); len(bad) > 0 {
		t.Errorf("moments when the counter and this browser's row differed ([counter, row]): %v", bad)
	}
}

// A login renews the session's token (a new session ID), but it is the
// same browser: its row follows it, logged in now, with its count, and no
// anonymous row of the old token stays beside it.
func TestBrowserRowFollowsTheBrowserThroughLogin(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	chrome := newBrowser(t)
	chrome.open(s.url("/count"))
	chrome.waitText("view-count", "1")
	chrome.count(2)
	chrome.register(s, "rowan", "rowan-password")
	chrome.open(s.url("/count"))
	chrome.waitText("view-count", "3")
	rows := eval[[][]string](chrome, `[...document.querySelectorAll('[data-testid=browser-row]')].map(r =>
		[r.dataset.this ?? '', r.querySelector('[data-testid=browser-login]').textContent.trim(), r.querySelector('[data-testid=browser-views]').textContent.trim()])`)
	if len(rows) != 1 || rows[0][0] != "true" || rows[0][1] != "logged in" || rows[0][2] != "3" {
		t.Errorf("rows [this, session, views]: %q, want only this browser, logged in, at 3", rows)
	}
}

// The sessions page's table and the Redis panel under it (the same user's
// index, user:<name>:sessions) describe one moment: when a login elsewhere
// adds a row, the panel's hash has that entry in the same change, and when
// a revoke removes it, the entry goes with it, in every frame the page
// paints.
func TestBrowserSessionsTableAndRedisPanelShowOneMoment(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	laptop := newBrowser(t)
	phone := laptop.privateWindow()
	laptop.register(s, "sasha", "sasha-password")
	laptop.open(s.url("/sessions"))
	waitStreams(t, s.app, 1)
	const indexEntries = `(() => {
		const e = [...document.querySelectorAll('[data-testid=redis-entry]')].find(e => e.querySelector('[data-testid=redis-key]').textContent.endsWith(':sessions'));
		return e ? Object.keys(JSON.parse(e.querySelector('[data-testid=redis-value]').textContent)).length : -1;
	})()`
	laptop.waitFor("the panel's index with this session", indexEntries+` === 1`)
	// Sampled before every frame the page paints: what a student could see.
	eval[bool](laptop, `(() => {
		window.seen = [];
		const frame = () => {
			window.seen.push([document.querySelectorAll('[data-testid=session-row]').length, `+indexEntries+`]);
			requestAnimationFrame(frame);
		};
		requestAnimationFrame(frame);
		return true;
	})()`)

	phone.login(s, "sasha", "sasha-password")
	laptop.waitFor("two rows and two entries", `document.querySelectorAll('[data-testid=session-row]').length === 2 && `+indexEntries+` === 2`)
	laptop.click("revoke")
	laptop.waitFor("one row and one entry", `document.querySelectorAll('[data-testid=session-row]').length === 1 && `+indexEntries+` === 1`)
	if bad := eval[[][]int](laptop, `window.seen.filter(([rows, entries]) => entries !== -1 && rows !== entries)`); len(bad) > 0 {
		t.Errorf("moments when the table and the panel's index differed ([rows, entries]): %v", bad)
	}
}

// The list says which browsers still have a page of the app open (their
// live stream listens) and which are gone: another browser's row says
// "open now" while its page is open and "closed" once it leaves, without a
// count anywhere.
func TestBrowserListSaysWhichBrowsersHaveAPageOpen(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	chrome := newBrowser(t)
	firefox := chrome.privateWindow()
	firefox.userAgent(firefoxUA)
	chrome.open(s.url("/count"))
	chrome.waitText("view-count", "1")
	waitStreams(t, s.app, 1)
	firefox.open(s.url("/count"))
	firefox.waitText("view-count", "1")
	const other = `document.querySelector('[data-testid=browser-row]:not([data-this]) [data-testid=browser-page]')?.textContent.trim()`
	chrome.waitFor("Firefox's row: open now", other+` === 'open now'`)
	if this := eval[string](chrome, `document.querySelector('[data-this] [data-testid=browser-page]').textContent.trim()`); this != "open now" {
		t.Errorf("this browser's row says %q, want open now", this)
	}
	firefox.do("leave the app", chromedp.Navigate("about:blank"))
	chrome.waitFor("Firefox's row: closed", other+` === 'closed'`)
}

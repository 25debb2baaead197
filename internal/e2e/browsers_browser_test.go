package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// firefoxUA is what the second browser context says it is: Chromium plays
// a second browser on the same computer, so the list can tell them apart.
const firefoxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"

// userAgent makes this page say it is another browser.
func (b *browser) userAgent(ua string) {
	b.t.Helper()
	b.do("set the User-Agent", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua})
		return err
	}))
}

// browserViews waits until the list of browsers has n rows and the row
// that is not this browser shows views.
func (b *browser) waitOtherBrowser(rows int, views string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("%d browsers listed, the other one at %s views", rows, views), fmt.Sprintf(
		`document.querySelectorAll('[data-testid=browser-row]').length === %d &&
		 [...document.querySelectorAll('[data-testid=browser-row]:not([data-this]) [data-testid=browser-views]')]
		   .some(e => e.textContent.trim() === %q)`, rows, views))
}

// Exercise 3, side by side: two browsers on one computer (two browser
// contexts: their own cookies, like a private window) each see both counts,
// and each sees the other's count change live, with no reload. The Redis
// panel lists what each request sent, starting with the GET of the session
// key.
func TestBrowserBrowsersSideBySide(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	chrome := newBrowser(t)
	firefox := chrome.privateWindow()
	firefox.userAgent(firefoxUA)

	chrome.open(s.url("/count"))
	chrome.waitText("view-count", "1")
	waitStreams(t, s.app, 1) // Chrome's page listens: what is published now reaches it
	firefox.open(s.url("/count"))
	firefox.waitText("view-count", "1")
	chrome.waitOtherBrowser(2, "1") // Firefox's first count reached Chrome's page
	waitStreams(t, s.app, 2)

	firefox.count(2)
	firefox.count(3)
	chrome.waitOtherBrowser(2, "3")
	chrome.count(2)
	firefox.waitOtherBrowser(2, "2")

	for _, tc := range []struct {
		b          *browser
		this, peer string
	}{{chrome, "Headless Chrome on Linux", "Firefox on Linux"}, {firefox, "Firefox on Linux", "Headless Chrome on Linux"}} {
		this := eval[string](tc.b, `document.querySelector('[data-this] [data-testid=browser-device]').firstChild.textContent.trim()`)
		peer := eval[string](tc.b, `document.querySelector('[data-testid=browser-row]:not([data-this]) [data-testid=browser-device]').textContent.trim()`)
		if this != tc.this || peer != tc.peer {
			t.Errorf("rows say this %q, other %q; want %q and %q", this, peer, tc.this, tc.peer)
		}
	}

	// The click's own trace came with it, as MONITOR prints it: the
	// session's GET, then the count script by its hash, with its keys.
	// Both skip what the pool may send first: a ROLE check of a connection
	// last checked 3 s ago or more (a slow run gets there), or a new
	// connection's handshake.
	const commands = `[...document.querySelectorAll('[data-testid=trace-command]')].map(e => e.textContent.replace(/\s+/g, ' ').trim()).filter(t => !/^"ROLE"|opening the connection this request needed/.test(t))`
	chrome.waitFor("the htmx count's trace", `(() => {
		const items = `+commands+`;
		return items.length >= 2 && /^"GET" "sess:\S+…" → \d+ B/.test(items[0]) && items.some(i => /^"EVAL(SHA)?" "[^"]+" "[23]" "sess:[^"]+…" "browsers:loopback" .*\(the count script\)/.test(i));
	})()`)
	// A page load's trace: the GET of the session key first, its token cut.
	chrome.open(s.url("/count"))
	first := eval[string](chrome, commands+`[0]`)
	token := chrome.sessionCookie(s.app.URL)
	if want := `"GET" "sess:` + token[:6] + `…" → `; len(first) < len(want) || first[:len(want)] != want {
		t.Errorf("first command of the page's trace: %q, want it to start %q", first, want)
	}
	chrome.waitFor("the Redis panel", `document.querySelector('[data-testid=redis-entry]') !== null`)
	chrome.screenshot("browsers")
	saveForDocs(t, "browsers-desktop.png", "browsers.png")
}

// saveForDocs copies a screenshot into docs/ when DOCS_SCREENSHOTS is set
// (go tool task screenshots), so the README's picture can be refreshed.
func saveForDocs(t *testing.T, shot, name string) {
	t.Helper()
	if os.Getenv("DOCS_SCREENSHOTS") == "" {
		return
	}
	dir, err := screenshotDir()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, shot))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("saved docs/%s", name)
}

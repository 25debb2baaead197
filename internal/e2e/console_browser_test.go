package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// consoleErrors is every red line the page's console has shown so far:
// the errors the browser itself logs (a failed or 4xx request) as well as
// the page's own.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var red []string
	for _, line := range b.console {
		if strings.Contains(line, "/error:") || strings.HasPrefix(line, "console.error") || strings.HasPrefix(line, "exception") {
			red = append(red, line)
		}
	}
	return red
}

// A student with DevTools open sees no red line in normal use: a wrong
// password or a form error is an answer the page shows, not a failed
// request. During an outage the page retries with growing pauses, so the
// console gets a few lines, not one a second. (Leaving a page while its
// live stream is open is not checked here: no test can see it fail.
// Chromium 156 shows nothing for the old page's stream, headless or headed
// with DevTools open and its log preserved, whether or not live.js ends
// the stream on pagehide, and nothing for the htmx SSE extension's
// EventSource either: Blink never logs a cancelled request to the console,
// and the old page's network events stop at the navigation, so its stream
// stays "pending" in the Network panel.)
func TestBrowserConsoleStaysClean(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	b.recordPages()

	b.open(s.url("/"))
	b.open(s.url("/register"))
	b.fill("username", "x") // too short: 422 without JavaScript
	b.fill("password", "long-enough-password")
	b.click("register-submit")
	b.waitFor("the username error", `document.querySelector('[data-testid=username-error]') !== null`)
	b.register(s, "clara", "clara-password")
	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	b.count(2)
	for _, path := range []string{"/profile", "/sessions", "/count", "/profile"} {
		b.do("follow the link to "+path, chromedp.Click(chromedp.CSS(`#nav-links a[href="`+path+`"]`), chromedp.NodeVisible))
		b.waitFor("at "+path, fmt.Sprintf(`location.pathname === %q && document.readyState === 'complete'`, path))
		// Each page's stream is open when the next page replaces it.
		b.waitFor("the live stream to open", `window.liveEvents.includes('open')`)
	}
	b.open(s.url("/redis"))
	b.click("logout")
	b.waitFor("the logout notice", `document.querySelector('[data-testid=notice]') !== null`)
	b.open(s.url("/login"))
	b.fill("username", "clara")
	b.fill("password", "wrong-password") // 401 without JavaScript
	b.click("login-submit")
	b.waitText("form-error", "Invalid username or password.")
	b.login(s, "clara", "clara-password")
	b.open(s.url("/count"))
	b.waitText("view-count", "1") // a new session: the last one ended at the logout
	if red := b.consoleErrors(); len(red) > 0 {
		t.Errorf("in normal use the console shows %d red lines, want none:\n  %s", len(red), strings.Join(red, "\n  "))
	}

	// An outage of 8 s: once the page says so, it retries with growing
	// pauses (each refused attempt is one line the browser logs).
	before := len(b.consoleErrors())
	s.app.Stop()
	b.waitFor("the page to say the server is down", `document.querySelector('[data-testid=live-down]') !== null`)
	time.Sleep(8 * time.Second)
	refused := b.consoleErrors()[before:]
	t.Logf("an outage of about 8 s: %d red lines", len(refused))
	if len(refused) > 5 {
		t.Errorf("an outage of about 8 s logs %d red lines, want at most 5 (a retry with growing pauses):\n  %s",
			len(refused), strings.Join(refused, "\n  "))
	}
	s.app = apptest.Start(t, bin, "-redis", s.redis.URL(), "-addr", s.app.Addr, "-instance", "browser-test")
	b.waitFor("the page to hear the server again", `document.querySelector('[data-testid=live-status] [data-testid=live-survived]') !== null`)
	b.count(2)
}

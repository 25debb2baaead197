package e2e

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// Controls behave as controls: the counter's action is a button, so Space
// presses it (a link styled as one scrolled the page instead), and after a
// login by the form the keyboard focus is in the page, not on <body>.
func TestBrowserControlsBehaveAsControls(t *testing.T) {
	s := startSite(t)
	b := newBrowser(t)
	b.do("phone width", chromedp.EmulateViewport(phone.width, phone.height)) // a long page, which Space would scroll

	b.register(s, "keys", "keyboard-only")
	if got := eval[string](b, `document.activeElement === document.body ? 'body' : document.activeElement.closest('main') ? 'main' : document.activeElement.tagName`); got != "main" {
		t.Errorf("after logging in, focus is on %s, want in the page's main content", got)
	}

	b.open(s.url("/count"))
	if got := eval[string](b, `document.querySelector('[data-testid=count-button]').tagName`); got != "BUTTON" {
		t.Errorf("the count control is a %s, want a BUTTON", got)
	}
	before := b.text("view-count")
	eval[bool](b, `(document.querySelector('[data-testid=count-button]').focus(), window.scrollTo(0, 0), true)`)
	b.do("press Space", chromedp.KeyEvent(" "))
	b.waitFor("the count to go up after Space", fmt.Sprintf(`document.querySelector("[data-testid=view-count]").textContent.trim() !== %q`, before))
	if y := eval[float64](b, `window.scrollY`); y != 0 {
		t.Errorf("Space scrolled the page by %.0f px", y)
	}
	if !eval[bool](b, `document.activeElement?.dataset.testid === 'count-button'`) {
		t.Errorf("after Space the focus left the count button")
	}
}

package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// At phone width (390 px): the header stays two rows when logged in, the
// nav's "Log in" button lines up with the links, and the sessions table
// says it scrolls sideways.
func TestBrowserPhoneLayout(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	b.do("phone width", chromedp.EmulateViewport(phone.width, phone.height))

	b.open(s.url("/count"))
	t.Run("the Log in button lines up with the links", func(t *testing.T) {
		// The links wrap to their own row at phone width: compare at desktop.
		b.do("desktop width", chromedp.EmulateViewport(desktop.width, desktop.height))
		off := eval[float64](b, `(() => {
			const mid = el => { const r = el.getBoundingClientRect(); return (r.top + r.bottom) / 2; };
			return Math.abs(mid(document.querySelector('#whoami > [role=button]')) - mid(document.querySelector('#nav-links li:first-child > a')));
		})()`)
		if off > 1.5 {
			t.Errorf("the Log in button's middle is %.1f px off the links'", off)
		}
		b.do("phone width", chromedp.EmulateViewport(phone.width, phone.height))
	})

	b.register(s, "averylongusername", "student-password")
	b.open(s.url("/sessions"))
	t.Run("the logged-in header takes two rows", func(t *testing.T) {
		h := eval[float64](b, `document.querySelector('body > header').getBoundingClientRect().height`)
		if h > 110 {
			t.Errorf("header is %.0f px high, want two rows (at most 110 px)", h)
		}
	})
	t.Run("the sessions table says it scrolls", func(t *testing.T) {
		if !eval[bool](b, `(() => { const d = document.querySelector('.table-scroll'); return d.scrollWidth > d.clientWidth; })()`) {
			t.Skip("the table fits: nothing to scroll")
		}
		hint := eval[string](b, `getComputedStyle(document.querySelector('.table-scroll'), '::before').content`)
		if hint == "none" || hint == "" {
			t.Error("a table wider than the phone gives no cue that it scrolls")
		}
	})
}

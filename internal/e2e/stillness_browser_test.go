package e2e

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// Pages hold still while they load (Lighthouse's Cumulative Layout Shift,
// measured here as Chromium reports it to a PerformanceObserver): the Redis
// panel, which arrives after the page, must not push what is drawn.
func TestBrowserPagesHoldStill(t *testing.T) {
	s := startSite(t)
	b := newBrowser(t)
	b.register(s, "still", "holding-still")
	for _, v := range []viewport{desktop, phone} {
		b.do(v.name+" width", chromedp.EmulateViewport(v.width, v.height))
		for _, path := range []string{"/profile", "/login"} { // the pages where the panel moved things
			b.open(s.url(path))
			b.waitFor("the Redis panel", `document.querySelector('[data-testid=redis-entries], [data-testid=redis-empty]') !== null`)
			cls := step(b, "measure the layout shift", chromedp.Evaluate[float64](`new Promise(resolve => {
				let sum = 0;
				new PerformanceObserver(list => {
					for (const e of list.getEntries()) if (!e.hadRecentInput) sum += e.value;
				}).observe({type: 'layout-shift', buffered: true});
				setTimeout(() => resolve(sum), 500);
			})`, chromedp.EvalAwaitPromise))
			t.Logf("%s at %s: CLS %.3f", path, v.name, cls)
			if cls >= 0.05 {
				t.Errorf("%s at %s: cumulative layout shift %.3f, want under 0.05", path, v.name, cls)
			}
		}
	}
	b.do("reset viewport", chromedp.EmulateViewport(desktop.width, desktop.height))
}

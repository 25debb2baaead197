package e2e

import (
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// The header's lab progress on the page that answers a count says what
// /lab says: after a restart, the counter's htmx answer; on another
// instance, the whole page.
func TestBrowserHeaderProgressFollowsTheCount(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	t.Parallel()
	rs := redistest.Start(t)
	a := apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "a")
	b := newBrowser(t)
	b.open(a.URL + "/count")
	b.waitText("view-count", "1")
	b.count(2)
	b.waitText("lab-progress", "2 of 7 done")

	// The same instance, restarted; the page stays open and counts again.
	a.Stop()
	a = apptest.Start(t, bin, "-redis", rs.URL(), "-addr", a.Addr, "-instance", "a")
	b.waitFor("the page to see the new process", `document.querySelector('[data-testid=live-status] [data-testid=live-survived]') !== null`)
	b.count(3)
	got := b.text("lab-progress")
	b.screenshot("lab-header-after-restart")
	b.open(a.URL + "/lab")
	b.waitText("lab-summary", "3 of 7 done")
	if got != "3 of 7 done" {
		t.Errorf("after the count on the restarted process the header said %q; /lab says 3 of 7 done", got)
	}

	// Another instance on the same Redis: the whole /count page.
	other := apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "b")
	b.open(other.URL + "/count")
	b.waitText("view-count", "4")
	got = b.text("lab-progress")
	b.open(a.URL + "/lab")
	b.waitText("lab-summary", "4 of 7 done")
	if got != "4 of 7 done" {
		t.Errorf("the count page on instance b said %q in the header; /lab says 4 of 7 done", got)
	}
}

// A count in one tab that ticks a step shows in the header of another tab's
// count page too, without a reload (its Redis panel reloads after each
// count, and brings the header's progress).
func TestBrowserHeaderProgressFollowsAnotherTabsCount(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	one := newBrowser(t)
	one.open(s.url("/count"))
	one.waitText("view-count", "1")
	one.waitText("lab-progress", "1 of 7 done")
	waitStreams(t, s.app, 1)
	one.markPage()
	two := one.newTab()
	two.open(s.url("/count")) // the second view: the count step ticks
	two.waitText("lab-progress", "2 of 7 done")
	one.waitText("view-count", "2")
	one.waitText("lab-progress", "2 of 7 done")
	if one.unmarked() {
		t.Error("the first tab reloaded to show the progress")
	}
}

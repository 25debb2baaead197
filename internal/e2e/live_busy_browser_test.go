package e2e

import (
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// A page whose live stream is refused at a bound (429) says so, and does
// not claim the server is down: with -class 1 one address may hold three
// streams, and three are open already.
func TestBrowserShowsARefusedLiveStream(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	rs := redistest.Start(t)
	s := &site{redis: rs, app: apptest.Start(t, bin, "-redis", rs.URL(), "-class", "1")}
	c := apptest.Client(t)
	apptest.Get(t, c, s.url("/count"))
	for range 3 {
		if st := apptest.OpenStream(t, c, s.url("/live")); st.Status != 200 {
			t.Fatalf("stream: %d", st.Status)
		}
	}
	b := newBrowser(t)
	b.open(s.url("/count"))
	b.waitFor("the refusal on the page", `!!document.querySelector('[data-testid=live-busy]')`)
	if got := b.statusText(); !strings.Contains(got, "Too many live pages") || !strings.Contains(got, "per address") {
		t.Errorf("live status %q, want the refusal naming its bound", got)
	}
	if eval[bool](b, `!!document.querySelector('[data-testid=live-down]')`) {
		t.Error("the page says the server is not answering")
	}
}

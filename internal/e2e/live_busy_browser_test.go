package e2e

import (
	"net/http"
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

// A page whose stream made room for another address's (the process bound
// full, this address the biggest holder) says so as it would after a 429,
// and does not claim the server is down. With -class 1 the process holds 5
// streams, 3 per address: the page's and two more from this computer, two
// from 192.0.2.1; then one from 192.0.2.2 takes the page's place, the
// oldest of the biggest holder's.
func TestBrowserShowsAStreamThatMadeRoom(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	rs := redistest.Start(t)
	s := &site{redis: rs, app: apptest.Start(t, bin, "-redis", rs.URL(), "-class", "1",
		"-trusted-proxies", "127.0.0.1/32", "-debug-addr", "127.0.0.1:0")}
	b := newBrowser(t)
	b.open(s.url("/count"))
	waitStreams(t, s.app, 1)
	from := func(addr string) *http.Client {
		c := apptest.Client(t)
		if addr != "" {
			c.Transport = forwardedFor(addr)
		}
		apptest.Get(t, c, s.url("/count"))
		return c
	}
	for _, addr := range []string{"", "", "192.0.2.1", "192.0.2.1", "192.0.2.2"} {
		if st := apptest.OpenStream(t, from(addr), s.url("/live")); st.Status != 200 {
			t.Fatalf("stream from %q: %d", addr, st.Status)
		}
	}
	b.waitFor("the page's stream making room", `!!document.querySelector('[data-testid=live-busy]')`)
	if got := b.statusText(); !strings.Contains(got, "Too many live pages") || !strings.Contains(got, "made room") {
		t.Errorf("live status %q, want it to say the page made room", got)
	}
	if eval[bool](b, `!!document.querySelector('[data-testid=live-down]')`) {
		t.Error("the page says the server is not answering")
	}
	waitStreams(t, s.app, 5)
}

// forwardedFor is a transport that says the request comes from addr
// (through a trusted proxy).
type forwardedFor string

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", string(f))
	return http.DefaultTransport.RoundTrip(r)
}

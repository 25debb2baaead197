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

// A page that made room says so only until its live updates are back: let
// in again (a stream of another address closed, and the page asked again,
// here at once after "Stay signed in" changed its session, else after 30 s),
// it no longer says it "asks for its live updates again in 30 seconds".
func TestBrowserSaysNothingOfMakingRoomOnceLiveAgain(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	rs := redistest.Start(t)
	s := &site{redis: rs, app: apptest.Start(t, bin, "-redis", rs.URL(), "-class", "1", "-new-sessions", "0",
		"-trusted-proxies", "127.0.0.1/32", "-debug-addr", "127.0.0.1:0")}
	b := newBrowser(t)
	b.register(s, "ann", "student-password")
	waitStreams(t, s.app, 1)
	var streams []*apptest.Stream
	for _, addr := range []string{"", "", "192.0.2.1", "192.0.2.1", "192.0.2.2"} {
		c := apptest.Client(t)
		if addr != "" {
			c.Transport = forwardedFor(addr)
		}
		apptest.Get(t, c, s.url("/count"))
		st := apptest.OpenStream(t, c, s.url("/live"))
		if st.Status != 200 {
			t.Fatalf("stream from %q: %d", addr, st.Status)
		}
		streams = append(streams, st)
	}
	b.waitFor("the page's stream making room", `!!document.querySelector('[data-testid=live-busy]')`)

	streams[2].Close()
	waitStreams(t, s.app, 4)
	b.click("stay-button")
	waitStreams(t, s.app, 5)
	b.waitFor("the line about making room to go once the page is live again",
		`!document.querySelector('[data-testid=live-busy]') && !document.querySelector('[data-testid=live-down]')`)
}

// forwardedFor is a transport that says the request comes from addr
// (through a trusted proxy).
type forwardedFor string

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", string(f))
	return http.DefaultTransport.RoundTrip(r)
}

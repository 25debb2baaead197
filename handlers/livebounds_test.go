package handlers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/views"
)

// Open streams are bounded per session, per client address and per
// process; past a bound the answer is a 429 the page's script understands
// (Retry-After and a line to show), and the refusals are logged once a
// minute, not once each.
func TestLiveStreamsAreBounded(t *testing.T) {
	// Per process: four addresses with two streams each fill it, so the
	// fourth, holding as many as any, is refused (one holding fewer would
	// take a place: TestAFullProcessMakesRoomForAnotherAddress).
	limits := StreamLimits{PerSession: 2, PerAddress: 5, PerProcess: 8}
	tests := []struct {
		name     string
		sessions int // each opens streams until one is refused
		perAddr  bool
		want     string
	}{
		{"per session", 1, false, "open from here (at most 2 per session)"},
		{"per address", 3, false, "open from here (at most 5 per address)"},
		// Not "from here": the address holds no more than any other.
		{"per process", 4, true, "open on this server (at most 8 per process)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta := newTestApp(t, func(a *App) {
				a.StreamLimits = limits
				if tt.perAddr {
					// Every client has its own address (X-Forwarded-For
					// from a trusted proxy), so only the process bound is
					// left to reach.
					a.TrustedProxies, _ = ParseTrustedProxies("127.0.0.1/32")
				}
			})
			open := 0
			var refused *http.Response
			for i := range tt.sessions {
				c := browser(t, firefoxLinux)
				if tt.perAddr {
					c.Transport = forwardedFor(fmt.Sprintf("192.0.2.%d", i+1))
				}
				ta.get(c, "/count")
				for range limits.PerSession + 1 {
					req, _ := http.NewRequest(http.MethodGet, ta.srv.URL+"/live", nil)
					resp, err := streamClient(c).Do(req)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { resp.Body.Close() })
					if resp.StatusCode == http.StatusOK {
						open++
						continue
					}
					refused = resp
					break
				}
			}
			want := map[string]int{"per session": 2, "per address": 5, "per process": 8}[tt.name]
			if open != want {
				t.Errorf("%d streams accepted, want %d", open, want)
			}
			if refused == nil {
				t.Fatal("no stream was refused")
			}
			if refused.StatusCode != http.StatusTooManyRequests || refused.Header.Get("Retry-After") == "" {
				t.Fatalf("refusal: %d, Retry-After %q; want 429 with Retry-After", refused.StatusCode, refused.Header.Get("Retry-After"))
			}
			b := make([]byte, 512)
			n, _ := refused.Body.Read(b)
			if msg := string(b[:n]); !strings.Contains(msg, "Too many live pages") || !strings.Contains(msg, tt.want) {
				t.Errorf("refusal says %q, want it to name the bound (%s)", msg, tt.want)
			}
			// When it asks again, not a promise: the bound may still be
			// full then (a flood at the process bound holds its streams).
			if msg := string(b[:n]); !strings.Contains(msg, "asks for its live updates again in 30 seconds") || strings.Contains(msg, "resume") {
				t.Errorf("refusal says %q, want it to say when the page asks again, and promise nothing", msg)
			}
			if got := ta.app.streams.count(); got != want {
				t.Errorf("%d streams counted open, want %d", got, want)
			}
		})
	}

	// An IPv6 client has a /64 of addresses: the throttles count it once, and
	// so must the bound per address, or one client takes every stream of the
	// process by spreading its sessions over two addresses.
	t.Run("per address counts an IPv6 /64 as one address", func(t *testing.T) {
		ta := newTestApp(t, func(a *App) {
			a.StreamLimits = StreamLimits{PerSession: 1, PerAddress: 2, PerProcess: 10}
			a.TrustedProxies, _ = ParseTrustedProxies("127.0.0.1/32")
		})
		statuses := []int{}
		for i := range 3 {
			c := browser(t, firefoxLinux)
			c.Transport = forwardedFor(fmt.Sprintf("2001:db8::%d", i+1))
			ta.get(c, "/count")
			req, _ := http.NewRequest(http.MethodGet, ta.srv.URL+"/live", nil)
			resp, err := streamClient(c).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { resp.Body.Close() })
			statuses = append(statuses, resp.StatusCode)
		}
		if want := []int{200, 200, 429}; fmt.Sprint(statuses) != fmt.Sprint(want) {
			t.Errorf("streams from 2001:db8::1, ::2, ::3: %v, want %v (one /64, at most 2 per address)", statuses, want)
		}
	})

	// Not one client beside everyone's count, as if it had made them all.
	t.Run("a refusal line says how many, from how many clients and which most", func(t *testing.T) {
		ta := newTestApp(t, func(a *App) {
			a.StreamLimits = StreamLimits{PerSession: 1}
			a.TrustedProxies, _ = ParseTrustedProxies("127.0.0.1/32")
		})
		streaming := func(addr string) *http.Client {
			c := browser(t, firefoxLinux)
			c.Transport = forwardedFor(addr)
			ta.get(c, "/count")
			if s := apptest.OpenStream(t, c, ta.srv.URL+"/live"); s.Status != http.StatusOK {
				t.Fatalf("first stream from %s: %d", addr, s.Status)
			}
			return c
		}
		refuse := func(c *http.Client, times int) {
			t.Helper()
			for range times {
				if r := ta.get(c, "/live"); r.status != http.StatusTooManyRequests {
					t.Fatalf("second stream of a session: %d, want 429", r.status)
				}
			}
		}
		lines := func() []string {
			var ls []string
			for line := range strings.Lines(ta.logs.String()) {
				if strings.Contains(line, "live streams refused") {
					ls = append(ls, line)
				}
			}
			return ls
		}
		a, b := streaming("192.0.2.1"), streaming("192.0.2.2")
		refuse(a, 1)
		if ls := lines(); len(ls) != 1 || !lineHas(ls[0], "", "refused=1", "clients=1", `top="192.0.2.1 (1)"`, "refused_session=1") {
			t.Fatalf("after the first refusal, want one line with refused=1 clients=1 top=\"192.0.2.1 (1)\":\n%s", ta.logs.String())
		}
		refuse(a, 3)
		refuse(b, 1)
		ta.app.tallies.backdate("live stream past a bound", perMinuteEvery)
		refuse(b, 1)
		ls := lines()
		if len(ls) != 2 {
			t.Fatalf("%d lines, want 2:\n%s", len(ls), ta.logs.String())
		}
		if want := []string{"open=2", "refused=5", "clients=2", `top="192.0.2.1 (3), 192.0.2.2 (2)"`, "refused_session=5",
			"refused_address=0", "refused_process=0"}; !lineHas(ls[1], "", want...) {
			t.Errorf("second line:\n%s\nwant %v", ls[1], want)
		}
		for _, l := range ls {
			if strings.Contains(l, " client=") {
				t.Errorf("a line names one client as if it stood for all:\n%s", l)
			}
		}
	})

	t.Run("refusals are logged once a minute, and a closed stream gives its place back", func(t *testing.T) {
		ta := newTestApp(t, func(a *App) { a.StreamLimits = StreamLimits{PerSession: 1} })
		c := browser(t, firefoxLinux)
		ta.get(c, "/count")
		s := apptest.OpenStream(t, c, ta.srv.URL+"/live")
		for range 5 {
			if r := ta.get(c, "/live"); r.status != http.StatusTooManyRequests {
				t.Fatalf("second stream of a session: %d, want 429", r.status)
			}
		}
		if n := strings.Count(ta.logs.String(), "live streams refused"); n != 1 {
			t.Errorf("%d log lines for 5 refusals in a minute, want 1:\n%s", n, ta.logs.String())
		}
		s.Close()
		waitFor(t, "the closed stream's place", func() bool { return ta.app.streams.count() == 0 })
		if s2 := apptest.OpenStream(t, c, ta.srv.URL+"/live"); s2.Status != http.StatusOK {
			t.Errorf("a stream after the first closed: %d, want 200", s2.Status)
		}
	})
}

// streamClient is c without its timeout (a stream outlives it).
func streamClient(c *http.Client) *http.Client {
	return &http.Client{Jar: c.Jar, Transport: c.Transport, CheckRedirect: c.CheckRedirect}
}

// sessionFrom is a browser with a session, whose requests come from addr
// through a trusted proxy.
func sessionFrom(t *testing.T, ta *testApp, addr string) *http.Client {
	c := browser(t, firefoxLinux)
	c.Transport = forwardedFor(addr)
	ta.get(c, "/count")
	return c
}

// forwardedFor is a transport that says the request comes from addr
// (through a trusted proxy).
type forwardedFor string

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", string(f))
	return http.DefaultTransport.RoundTrip(r)
}

// When the process bound is full, a stream from an address holding at least
// two fewer streams than the biggest holder takes the place of that holder's
// oldest stream, so two addresses that fill the bound cannot keep everyone
// else's live updates out; the biggest holder itself is refused as before,
// and so is an address one fewer (roomMargin).
func TestAFullProcessMakesRoomForAnotherAddress(t *testing.T) {
	lim := StreamLimits{PerSession: 2, PerAddress: 4, PerProcess: 6}
	ta := newTestApp(t, func(a *App) {
		a.StreamLimits = lim
		a.TrustedProxies, _ = ParseTrustedProxies("127.0.0.1/32")
	})
	session := func(addr string) *http.Client { return sessionFrom(t, ta, addr) }
	open := func(c *http.Client, who string) *apptest.Stream {
		t.Helper()
		s := apptest.OpenStream(t, c, ta.srv.URL+"/live")
		if s.Status != http.StatusOK {
			t.Fatalf("stream from %s: %d, want 200", who, s.Status)
		}
		s.Next(views.SSEHello)
		return s
	}
	countOpen := func(want int) {
		t.Helper()
		if got := ta.app.streams.count(); got != want {
			t.Fatalf("%d streams counted open, want %d (the process bound is %d)", got, want, lim.PerProcess)
		}
	}

	// A (a school's NAT, say) holds 4, B holds 2: the process is full.
	a1, a2 := session("192.0.2.1"), session("192.0.2.1")
	aStreams := []*apptest.Stream{open(a1, "A"), open(a1, "A"), open(a2, "A"), open(a2, "A")}
	b := session("192.0.2.2")
	open(b, "B")
	open(b, "B")
	countOpen(lim.PerProcess)

	// C is served, and its events flow.
	c := session("192.0.2.3")
	cStream := open(c, "C")
	ta.get(c, "/count")
	if ev := cStream.Next(views.SSECount); ev.Data != "2" {
		t.Errorf("C's count event: %q, want 2", ev.Data)
	}
	countOpen(lim.PerProcess)

	// A's oldest stream made room: its page hears why and when to ask again,
	// as it would from a 429; A's other streams go on.
	ev := aStreams[0].Next(views.SSEMadeRoom)
	if !strings.Contains(ev.Data, "Too many live pages") || ev.Retry != "30000" {
		t.Errorf("A's oldest stream was told %q, retry %q; want the refusal's words and retry 30000 (ms)", ev.Data, ev.Retry)
	}
	if !aStreams[0].Ended() {
		t.Fatal("A's oldest stream did not end")
	}
	ta.get(a2, "/count")
	for _, s := range aStreams[2:] {
		if ev := s.Next(views.SSECount); ev.Data != "2" {
			t.Errorf("a stream of A's second session: count %q, want 2", ev.Data)
		}
	}

	// A now holds the most (3, B 2, C 1): its next stream is refused.
	r := ta.get(a1, "/live")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "30" || !strings.Contains(r.body, "per process") {
		t.Fatalf("a new stream from A, the biggest holder: %d, Retry-After %q, %q; want 429, 30, per process",
			r.status, r.header.Get("Retry-After"), r.body)
	}
	countOpen(lim.PerProcess)

	// So is B's, one fewer than A (2 against 3): two addresses flooding a
	// full process settle instead of taking each other's places on every
	// request (roomMargin).
	if r := ta.get(b, "/live"); r.status != http.StatusTooManyRequests {
		t.Fatalf("a new stream from B, one fewer than A: %d, want 429", r.status)
	}

	// D (0, against A's 3) takes A's oldest left: the streams are shared.
	d := session("192.0.2.4")
	open(d, "D")
	if ev := aStreams[1].Next(views.SSEMadeRoom); ev.Name != views.SSEMadeRoom {
		t.Errorf("A's second stream: %q, want %q", ev.Name, views.SSEMadeRoom)
	}
	countOpen(lim.PerProcess)

	// Counted apart from refusals: in /metrics and in the log, by the
	// address that asked (the first event of a kind is a line at once).
	if got := metricValue(t, ta, "sessionlab_live_streams_ended_for_room_total"); got != "2" {
		t.Errorf("sessionlab_live_streams_ended_for_room_total %q, want 2", got)
	}
	var ended, refused string
	for line := range strings.Lines(ta.logs.String()) {
		if strings.Contains(line, "live streams ended to make room") && ended == "" {
			ended = line
		}
		if strings.Contains(line, "live streams refused at a bound") && refused == "" {
			refused = line
		}
	}
	if want := []string{"open=6", "ended=1", `top="192.0.2.3 (1)"`}; !lineHas(ended, "", want...) {
		t.Errorf("first line of streams ended to make room:\n%s\nwant %v\n%s", ended, want, ta.logs.String())
	}
	if want := []string{"refused=1", "refused_process=1"}; !lineHas(refused, "", want...) {
		t.Errorf("first line of streams refused:\n%s\nwant %v\n%s", refused, want, ta.logs.String())
	}
}

// metricValue is a sample's value as /metrics shows it ("" if missing).
func metricValue(t *testing.T, ta *testApp, sample string) string {
	t.Helper()
	for line := range strings.Lines(ta.operator("/metrics").body) {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// The attack the process bound allowed: a client on two addresses opens
// streams as fast as it can, each reopened the moment it ends or is
// refused, while a third address keeps one stream open and opens another
// now and then. It keeps the one and gets the other every time it asks,
// and the flood never holds more than the process bound.
func TestAFloodFromTwoAddressesLeavesAThirdItsStream(t *testing.T) {
	lim := StreamLimits{PerSession: 4, PerAddress: 30, PerProcess: 50}
	const workers, reopens = 30, 20 // per flooding address; times the third reopens
	ta := newTestApp(t, func(a *App) {
		a.StreamLimits = lim
		a.TrustedProxies, _ = ParseTrustedProxies("127.0.0.1/32")
	})
	session := func(addr string) *http.Client { return sessionFrom(t, ta, addr) }
	ctx, stop := context.WithCancel(context.Background())
	var served, refused, overBound atomic.Int64
	var wg sync.WaitGroup
	for _, addr := range []string{"192.0.2.1", "192.0.2.2"} {
		for range workers {
			c := streamClient(session(addr))
			wg.Go(func() {
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ta.srv.URL+"/live", nil)
					resp, err := c.Do(req)
					if err != nil {
						continue // stopped
					}
					if resp.StatusCode == http.StatusOK {
						served.Add(1)
					} else {
						refused.Add(1)
					}
					_, _ = io.Copy(io.Discard, resp.Body) // held until the server ends it
					resp.Body.Close()
					if n := ta.app.streams.count(); n > lim.PerProcess {
						overBound.Add(1)
					}
				}
			})
		}
	}
	t.Cleanup(func() { stop(); wg.Wait() })
	waitFor(t, "the flood to fill the process", func() bool { return ta.app.streams.count() == lim.PerProcess })

	c := session("192.0.2.3")
	kept := apptest.OpenStream(t, c, ta.srv.URL+"/live")
	if kept.Status != http.StatusOK {
		t.Fatalf("the third address's stream during the flood: %d, want 200", kept.Status)
	}
	kept.Next(views.SSEHello)
	for i := range reopens {
		s := apptest.OpenStream(t, c, ta.srv.URL+"/live")
		if s.Status != http.StatusOK {
			t.Fatalf("the third address's stream, time %d of %d during the flood: %d, want 200", i+1, reopens, s.Status)
		}
		s.Next(views.SSEHello)
		s.Close()
		// Its place is given back before the next, or the session bound
		// would refuse a stream the server has not yet seen closed.
		waitFor(t, "the closed stream's place", func() bool { return ta.app.streams.heldBy("192.0.2.3") == 1 })
	}
	// The stream kept through the flood is still open: its events flow.
	ta.get(c, "/count")
	if ev := kept.Next(views.SSECount); ev.Data != "2" {
		t.Errorf("the third address's kept stream: count %q, want 2", ev.Data)
	}
	stop()
	wg.Wait()
	if n := overBound.Load(); n > 0 {
		t.Errorf("%d times more than %d streams were counted open", n, lim.PerProcess)
	}
	t.Logf("flood from 2 addresses × %d clients: %d streams served, %d refused (429), %s ended to make room; the third address: its stream kept, %d of %d others served",
		workers, served.Load(), refused.Load(), metricValue(t, ta, "sessionlab_live_streams_ended_for_room_total"), reopens, reopens)
}

// BenchmarkAdmitWhenFull is the bound's work for a stream opened when the
// process is full and its streams are spread over 999 addresses (the most
// a pass over the addresses meets): one holds two, each other one. A
// stream from a new address takes the oldest place of the one holding two;
// then it leaves, and that address opens another (no pass: the process is
// not full), so each round is the same.
func BenchmarkAdmitWhenFull(b *testing.B) {
	lim := StreamLimits{PerSession: 4, PerAddress: 600, PerProcess: 1000}
	var o openStreams
	newStream := func(i int, addr string) *stream {
		return &stream{token: fmt.Sprint("token-", i), limitAddr: addr,
			rc: http.NewResponseController(httptest.NewRecorder()), stop: make(chan struct{})}
	}
	for i := range lim.PerProcess {
		if _, _, err := o.admit(newStream(i, fmt.Sprint("192.0.2.", max(i, 1))), lim); err != nil {
			b.Fatal(err)
		}
	}
	i := lim.PerProcess
	for b.Loop() {
		s := newStream(i, "198.51.100.1")
		if madeRoom, _, err := o.admit(s, lim); err != nil || !madeRoom {
			b.Fatalf("admit: made room %v, %v", madeRoom, err)
		}
		o.remove(s)
		if _, _, err := o.admit(newStream(i+1, "192.0.2.1"), lim); err != nil {
			b.Fatal(err)
		}
		i += 2
	}
}

// heldBy is how many streams the address (as the bound counts it) holds.
func (o *openStreams) heldBy(addr string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.held(addr)
}

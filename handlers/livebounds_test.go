package handlers

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// Open streams are bounded per session, per client address and per
// process; past a bound the answer is a 429 the page's script understands
// (Retry-After and a line to show), and the refusals are logged once a
// minute, not once each.
func TestLiveStreamsAreBounded(t *testing.T) {
	limits := StreamLimits{PerSession: 2, PerAddress: 5, PerProcess: 7}
	tests := []struct {
		name     string
		sessions int // each opens streams until one is refused
		perAddr  bool
		want     string
	}{
		{"per session", 1, false, "per session"},
		{"per address", 3, false, "per address"},
		{"per process", 4, true, "per process"},
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
			want := map[string]int{"per session": 2, "per address": 5, "per process": 7}[tt.name]
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

// forwardedFor is a transport that says the request comes from addr
// (through a trusted proxy).
type forwardedFor string

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", string(f))
	return http.DefaultTransport.RoundTrip(r)
}

package handlers

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"testing"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// The request path up to the store: the whole handler chain (headers,
// cross-origin check, session load, handler, render, save) called in
// process, against a real redis-server, without HTTP or a network client in
// the way. -benchmem shows what one request allocates.

// discardWriter is a ResponseWriter that keeps only the status, so the
// benchmark measures the app, not a recorder.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// newBenchApp is newTestApp on a Redis without persistence (redistest
// fsyncs every write, which would measure the disk, not the app).
func newBenchApp(b *testing.B) *testApp {
	return newTestAppOn(b, redistest.Start(b, "--appendonly", "no"))
}

func benchRequest(b *testing.B, path, cookie string, want int, setup ...func(*testApp)) {
	ta := newBenchApp(b)
	for _, f := range setup {
		f(ta)
	}
	h := ta.app.Routes()
	if cookie == "logged-in" || cookie == "logged-in-lab" {
		c := ta.client()
		ta.register(c, "bench", "bench-password")
		if cookie == "logged-in-lab" {
			addLabEvidence(b, ta, ta.token(c))
		}
		cookie = ta.app.Sessions.Cookie.Name + "=" + ta.token(c)
	}
	// Cancellable, as net/http's server makes every request's context:
	// a context.Background would hide what deriving from it costs.
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ta.srv.URL+path, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != want && !(want == http.StatusOK && w.status == 0) {
			b.Fatalf("GET %s: status %d, want %d", path, w.status, want)
		}
	}
}

func BenchmarkProfileLoggedIn(b *testing.B) { benchRequest(b, "/profile", "logged-in", http.StatusOK) }
func BenchmarkCountLoggedIn(b *testing.B)   { benchRequest(b, "/count", "logged-in", http.StatusOK) }
func BenchmarkHomeNoCookie(b *testing.B)    { benchRequest(b, "/", "", http.StatusOK) }

// BenchmarkProfileLabEvidence is GET /profile of a student past the lab's
// restart and servers steps, whose session every request decodes with that
// evidence and the process that counted last.
func BenchmarkProfileLabEvidence(b *testing.B) {
	benchRequest(b, "/profile", "logged-in-lab", http.StatusOK)
}

// addLabEvidence stores the restart and servers evidence and the last
// counter in the session of token, as the count script leaves them.
func addLabEvidence(b *testing.B, ta *testApp, token string) {
	key := sessions.Key(token)
	deadline, values, err := sessions.Codec{}.Decode([]byte(ta.redis.MustDo("GET", key)))
	if err != nil {
		b.Fatal(err)
	}
	values[sessions.KeyLab] = sessions.Lab{
		Restart: &sessions.LabMove{From: "89c18f", Process: "b7ca7e", Instance: "vm:8201", Views: 647989, At: 1796571859144},
		Servers: &sessions.LabMove{From: "vm:8091", Process: "4ed79d", Instance: "vm:8101", Views: 57702, At: 1796571746544},
	}
	values[sessions.KeyCounted] = sessions.Counted{Process: "5405d3", Instance: "vm:8201"}
	raw, err := sessions.Codec{}.Encode(deadline, values)
	if err != nil {
		b.Fatal(err)
	}
	ta.redis.MustDo("SET", key, string(raw), "KEEPTTL")
}

// BenchmarkCountNoCookie is a new visitor's first count: a new session,
// counted against the limit on new anonymous sessions (set where this load
// never reaches it, as go tool task bench runs the app).
func BenchmarkCountNoCookie(b *testing.B) {
	benchRequest(b, "/count", "", http.StatusOK, func(ta *testApp) {
		p := throttle.DefaultPolicy
		p.Anonymous.Max = math.MaxInt32
		ta.app.Throttle = throttle.New(ta.redis.Client(b), p)
	})
}

// BenchmarkProfileParallel is GET /profile from many goroutines at once:
// what the pools and the Redis clients allow, without HTTP.
func BenchmarkProfileParallel(b *testing.B) {
	ta := newBenchApp(b)
	h := ta.app.Routes()
	c := ta.client()
	ta.register(c, "bench", "bench-password")
	cookie := ta.app.Sessions.Cookie.Name + "=" + ta.token(c)
	u, _ := url.Parse(ta.srv.URL + "/profile")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := &http.Request{Method: http.MethodGet, URL: u, Header: http.Header{"Cookie": {cookie}}, Host: u.Host}
		w := &discardWriter{h: http.Header{}}
		for pb.Next() {
			clear(w.h)
			w.status = 0
			h.ServeHTTP(w, req)
			if w.status != http.StatusOK && w.status != 0 {
				b.Fatalf("status %d", w.status)
			}
		}
	})
}

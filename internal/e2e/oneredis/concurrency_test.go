package oneredis

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// Two real processes on one Redis, one logged-in browser: 200 counts, 24 in
// flight at a time across both, while the same browser reads its profile and its
// sessions page and keeps a live (SSE) stream open on each instance. Every
// count is counted once, and nothing that only reads (including the
// long-lived streams, which loaded the session before any of the counts)
// ever writes an older count back.
func TestConcurrentCountsOnTwoProcesses(t *testing.T) {
	rs := redistest.Start(t)
	a := apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "a")
	b := apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "b")
	c := apptest.Client(t)
	if s := apptest.PostForm(t, c, a.URL+"/register", url.Values{"username": {"duo"}, "password": {"duo-password"}}); s != http.StatusSeeOther {
		t.Fatalf("register: %d", s)
	}
	token := apptest.SessionToken(t, c, a.URL)

	// Live streams, opened before the counts; each records the count
	// events it carries, in order.
	const counts = 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var streams sync.WaitGroup
	carried := make([][]int, 2)
	last := []chan struct{}{make(chan struct{}), make(chan struct{})} // closed at the count after the storm
	for i, p := range []*apptest.Process{a, b} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/live", nil)
		req.Header.Set("Accept", "text/event-stream")
		streamClient := &http.Client{Jar: c.Jar} // no timeout: it streams
		resp, err := streamClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("live stream on %s: %v %v", p.Addr, err, resp)
		}
		streams.Go(func() {
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			inCount, sawLast := false, false
			for sc.Scan() {
				line := sc.Text()
				switch {
				case line == "event: count":
					inCount = true
				case inCount && strings.HasPrefix(line, "data: "):
					n, _ := strconv.Atoi(strings.TrimPrefix(line, "data: "))
					carried[i] = append(carried[i], n)
					if n == counts+1 && !sawLast {
						// Once: a re-subscription's catch-up may send it again.
						sawLast = true
						close(last[i])
					}
					inCount = false
				}
			}
		})
	}

	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	// Enough to overlap on both processes, not so many that a busy machine
	// queues one past its Redis budget (a truthful 503, not what this tests).
	inFlight := make(chan struct{}, 24)
	for i := range counts {
		p := []*apptest.Process{a, b}[i%2]
		wg.Go(func() {
			inFlight <- struct{}{}
			defer func() { <-inFlight }()
			if status, _ := fetchStatus(c, p.URL+"/count"); status == http.StatusOK {
				ok.Add(1)
			} else {
				failed.Add(1)
			}
		})
		if i%4 == 0 {
			path := []string{"/profile", "/sessions"}[i/4%2]
			wg.Go(func() {
				inFlight <- struct{}{}
				defer func() { <-inFlight }()
				if status, _ := fetchStatus(c, p.URL+path); status != http.StatusOK {
					failed.Add(1)
				}
			})
		}
	}
	wg.Wait()

	// A hub drops events for a stream that is behind, so under the storm a
	// stream may skip some; the count after it must reach both streams.
	if status, _ := fetchStatus(c, a.URL+"/count"); status != http.StatusOK {
		t.Fatalf("the count after the storm: %d", status)
	}
	// One deadline for both streams: once it has passed, every wait ends at once.
	wait, stopWaiting := context.WithTimeout(ctx, 10*time.Second)
	defer stopWaiting()
	for i, done := range last {
		select {
		case <-done:
		case <-wait.Done():
			t.Errorf("the live stream on instance %s did not carry count %d within 10 s", []string{"a", "b"}[i], counts+1)
		}
	}
	cancel()
	streams.Wait()
	for i, ns := range carried {
		// The counting script publishes, so events come in count order.
		for j, n := range ns {
			if n < 1 || n > counts+1 || (j > 0 && n <= ns[j-1]) {
				t.Errorf("stream %d carried counts out of order or out of range: %v", i, ns)
				break
			}
		}
	}

	if failed.Load() > 0 {
		t.Errorf("%d requests failed", failed.Load())
	}
	var stored struct {
		Values struct {
			Views int `json:"views"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(rs.MustDo("GET", "sess:"+token)), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Values.Views != counts+1 || ok.Load() != counts {
		t.Errorf("Redis holds views = %d; %d of %d counts answered 200", stored.Values.Views, ok.Load(), counts)
	}
	if status, body := apptest.Get(t, c, b.URL+"/profile"); status != http.StatusOK || !strings.Contains(body, "Hello duo") {
		t.Errorf("profile after the counts: %d", status)
	}
	t.Logf("the two live streams carried %d and %d count events", len(carried[0]), len(carried[1]))
}

// fetchStatus is a GET that may run in a goroutine.
func fetchStatus(c *http.Client, u string) (int, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

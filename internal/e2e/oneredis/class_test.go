package oneredis

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// A class of 200 behind one address (a school's NAT), on the built binary
// with its default limits: each student signs up in one browser, mistypes
// the password once in a second browser and then logs in there, opens a
// live page in both and counts in both. Nobody gets a 429 or an error,
// every count is exact, on the page and on its stream; and one client from
// the same address still cannot guess a student's password faster than the
// per-account limits allow.
func TestAClassBehindOneAddress(t *testing.T) {
	if testing.Short() {
		t.Skip("plays a class of 200")
	}
	const (
		class  = 200
		counts = 2 // per browser
		busy   = 4
	)
	rs := redistest.Start(t)
	app := apptest.Start(t, bin, "-redis", rs.URL())
	type student struct {
		name    string
		a, b    *http.Client
		streams []*countStream
	}
	students := make([]*student, class)
	var failures sync.Map
	fail := func(s *student, format string, args ...any) {
		failures.Store(s.name+": "+fmt.Sprintf(format, args...), true)
	}
	each := func(step func(s *student)) {
		var wg sync.WaitGroup
		work := make(chan *student)
		for range busy {
			wg.Go(func() {
				for s := range work {
					step(s)
				}
			})
		}
		for _, s := range students {
			work <- s
		}
		close(work)
		wg.Wait()
	}
	post := func(c *http.Client, path string, form url.Values) int {
		resp, err := c.PostForm(app.URL+path, form)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range students {
		students[i] = &student{name: fmt.Sprintf("student%03d", i), a: apptest.Client(t), b: apptest.Client(t)}
	}
	start := time.Now()
	each(func(s *student) {
		password := s.name + "-password"
		if st := post(s.a, "/register", url.Values{"username": {s.name}, "password": {password}}); st != http.StatusSeeOther {
			fail(s, "register: %d", st)
			return
		}
		if st := post(s.b, "/login", url.Values{"username": {s.name}, "password": {"mistyped-it"}}); st != http.StatusUnauthorized {
			fail(s, "mistyped login: %d, want 401", st)
		}
		if st := post(s.b, "/login", url.Values{"username": {s.name}, "password": {password}}); st != http.StatusSeeOther {
			fail(s, "login: %d", st)
		}
	})
	t.Logf("200 sign-ups, mistypes and logins in %v", time.Since(start).Round(time.Millisecond))
	each(func(s *student) {
		for _, c := range []*http.Client{s.a, s.b} {
			cs, status := openCountStream(t, c, app.URL+"/live")
			if status != http.StatusOK {
				fail(s, "GET /live: %d", status)
				continue
			}
			s.streams = append(s.streams, cs)
		}
	})
	each(func(s *student) {
		for i, c := range []*http.Client{s.a, s.b} {
			for n := 1; n <= counts; n++ {
				req, _ := http.NewRequest(http.MethodGet, app.URL+"/count", nil)
				req.Header.Set("HX-Request", "true")
				resp, err := c.Do(req)
				if err != nil {
					fail(s, "count: %v", err)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail(s, "count: %d", resp.StatusCode)
					continue
				}
				if got := apptest.ViewCount(t, string(b)); got != fmt.Sprint(n) {
					fail(s, "browser %d: count %d shows %s", i, n, got)
				}
			}
		}
	})
	each(func(s *student) {
		for i, cs := range s.streams {
			if !cs.waitCount(fmt.Sprint(counts), 15*time.Second) {
				fail(s, "stream %d: last count event %q, want %d", i, cs.last.Load(), counts)
			}
		}
	})
	t.Logf("the class took %v", time.Since(start).Round(time.Millisecond))
	n := 0
	failures.Range(func(k, _ any) bool {
		if n++; n <= 20 {
			t.Error(k)
		}
		return true
	})
	if n > 0 {
		t.Fatalf("%d things went wrong for the class", n)
	}

	// The same address guessing one student's password: stopped by the
	// per-account limits (5 failures from one address per 5 minutes).
	guesser := apptest.Client(t)
	for i := 1; ; i++ {
		st := post(guesser, "/login", url.Values{"username": {"student007"}, "password": {fmt.Sprintf("guess-%d", i)}})
		if st == http.StatusTooManyRequests {
			if i != 6 {
				t.Errorf("the guesser was stopped at guess %d, want 6", i)
			}
			break
		}
		if st != http.StatusUnauthorized || i > 6 {
			t.Fatalf("guess %d: %d", i, st)
		}
	}
}

// countStream reads a /live stream and keeps only its last count event.
type countStream struct {
	last atomic.Value // string
	done chan struct{}
}

func openCountStream(t *testing.T, c *http.Client, u string) (*countStream, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := (&http.Client{Jar: c.Jar, Transport: c.Transport, CheckRedirect: c.CheckRedirect}).Do(req)
	if err != nil {
		cancel()
		return nil, 0
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, resp.StatusCode
	}
	cs := &countStream{done: make(chan struct{})}
	cs.last.Store("")
	go func() {
		defer close(cs.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "count":
				cs.last.Store(strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-cs.done })
	return cs, http.StatusOK
}

// waitCount waits until the stream's last count event is want.
func (cs *countStream) waitCount(want string, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cs.last.Load() == want {
			return true
		}
	}
	return false
}

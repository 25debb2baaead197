package handlers

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// hit is one response, collected in a goroutine (no t.Fatal there).
type hit struct {
	status    int
	body      string
	header    http.Header
	setCookie bool // the response set the session cookie (any value)
	elapsed   time.Duration
	err       error
}

// fetch sends one request; headers come in pairs. A nil form means GET.
func fetch(c *http.Client, rawURL string, form url.Values, headers ...string) hit {
	method, body := http.MethodGet, io.Reader(nil)
	if form != nil {
		method, body = http.MethodPost, strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		return hit{err: err}
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return hit{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	h := hit{status: resp.StatusCode, body: string(b), header: resp.Header, elapsed: time.Since(start), err: err}
	for _, ck := range resp.Cookies() {
		if ck.Name == "session" || ck.Name == "__Host-session" {
			h.setCookie = true
		}
	}
	return h
}

var viewCountRE = regexp.MustCompile(`data-testid="view-count"[^>]*>(\d+)<`)

// views is the count a page or fragment shows, or -1.
func (h hit) views() int {
	m := viewCountRE.FindStringSubmatch(h.body)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// storedViews is `views` in sess:<token> as Redis holds it (-1: no key).
func storedViews(t *testing.T, rs *redistest.Server, token string) int {
	t.Helper()
	raw := rs.MustDo("GET", sessions.Key(token))
	if raw == "" {
		return -1
	}
	var s struct {
		Values struct {
			Views int `json:"views"`
		} `json:"values"`
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatalf("sess:%s… is not a session: %v\n%s", token[:6], err, raw)
	}
	return s.Values.Views
}

// countHeaders are the two ways a browser counts: the plain link, and the
// htmx button that swaps the counter.
var countHeaders = [][]string{nil, {"HX-Request", "true", "HX-Target", views.IDViewCount}}

// maxInFlight bounds the requests a storm keeps in flight: enough for
// requests to overlap on both instances, few enough that -race on two cores
// shared with the e2e packages (go test -p 8) does not queue one past its
// Redis budget (a truthful 503, not what these tests are about): 24 did, at
// load 23.
const maxInFlight = 8

// 200 views of one session, 24 at a time and spread over two app instances
// on one Redis, raise the count by exactly 200: each is counted once, and
// each response shows a different number. Logged in, both instances have
// seen the session, so its counts read it and count in one round trip
// (countFirst), racing each other as anonymous counts do.
func TestConcurrentCountsAcrossInstancesAreAllCounted(t *testing.T) {
	t.Run("anonymous", func(t *testing.T) { concurrentCounts(t, false) })
	t.Run("logged in", func(t *testing.T) { concurrentCounts(t, true) })
}

func concurrentCounts(t *testing.T, loggedIn bool) {
	first := newTestApp(t)
	second := newTestAppOn(t, first.redis)
	c := first.client()
	if loggedIn {
		first.register(c, "counter", "counter-password")
		for _, ta := range []*testApp{first, second} {
			if r := ta.get(c, "/profile"); r.status != http.StatusOK {
				t.Fatalf("profile: %d", r.status)
			}
		}
	}
	if r := first.get(c, "/count"); r.status != http.StatusOK || viewCount(t, r.body) != "1" {
		t.Fatalf("first count: %d", r.status)
	}
	token := first.token(c)

	const n = 200
	hits := make([]hit, n)
	_, cmds := roundTrips(t, first.redis, func() {
		var wg sync.WaitGroup
		inFlight := make(chan struct{}, maxInFlight)
		for i := range n {
			base := []*testApp{first, second}[i%2].srv.URL
			wg.Go(func() {
				inFlight <- struct{}{}
				defer func() { <-inFlight }()
				hits[i] = fetch(c, base+"/count", nil, countHeaders[(i/2)%2]...)
			})
		}
		wg.Wait()
	})
	if reads := slices.Index(cmds, "GET"); loggedIn && reads >= 0 {
		t.Errorf("a logged-in count read its session apart from its count (%v…): want one round trip each", cmds[:min(len(cmds), reads+3)])
	}

	seen := map[int]bool{}
	for i, h := range hits {
		switch {
		case h.err != nil:
			t.Fatalf("count %d: %v", i, h.err)
		case h.status != http.StatusOK:
			t.Fatalf("count %d: status %d\n%s", i, h.status, h.body)
		case h.setCookie:
			t.Errorf("count %d set the session cookie again", i)
		case seen[h.views()]:
			t.Errorf("count %d showed %d, as another did before it", i, h.views())
		}
		seen[h.views()] = true
	}
	for v := 2; v <= n+1; v++ {
		if !seen[v] {
			t.Errorf("no response showed %d", v)
		}
	}
	if got := storedViews(t, first.redis, token); got != n+1 {
		t.Errorf("Redis holds views = %d, want %d", got, n+1)
	}
}

// Requests that only read the session (and touch it: TouchEvery is 0 here,
// so every one of them rewrites `seen` and the expiry) run between counts on
// two instances and never put back an older count.
func TestReadsNeverRollBackCounts(t *testing.T) {
	touchAlways := func(a *App) { a.TouchEvery = 0 }
	first := newTestApp(t, touchAlways)
	second := newTestAppOn(t, first.redis, touchAlways)
	c := first.client()
	first.register(c, "reader", "reader-password")
	token := first.token(c)

	reads := []struct {
		path    string
		headers []string
	}{
		{"/profile", nil},
		{"/profile", []string{"HX-Request", "true"}},
		{"/redis", nil},
		{"/redis", []string{"HX-Request", "true", "HX-Target", views.IDRedisPanel}},
		{"/", nil},
	}
	const counts = 120
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		counted int
		failed  []string
	)
	inFlight := make(chan struct{}, maxInFlight)
	for i := range counts {
		base := []*testApp{first, second}[i%2].srv.URL
		wg.Go(func() {
			inFlight <- struct{}{}
			defer func() { <-inFlight }()
			h := fetch(c, base+"/count", nil, countHeaders[i%2]...)
			mu.Lock()
			defer mu.Unlock()
			if h.err != nil || h.status != http.StatusOK {
				failed = append(failed, "count: "+strconv.Itoa(h.status))
				return
			}
			counted++
		})
		rd := reads[i%len(reads)]
		wg.Go(func() {
			inFlight <- struct{}{}
			defer func() { <-inFlight }()
			h := fetch(c, base+rd.path, nil, rd.headers...)
			if h.err != nil || h.status != http.StatusOK || h.setCookie {
				mu.Lock()
				failed = append(failed, rd.path+": "+strconv.Itoa(h.status))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d requests failed: %v", len(failed), failed)
	}
	if got := storedViews(t, first.redis, token); got != counted {
		t.Errorf("Redis holds views = %d after %d counts", got, counted)
	}
	if r := first.get(c, "/profile"); !strings.Contains(r.body, "Hello reader") {
		t.Errorf("profile after the storm: %d, not logged in", r.status)
	}
}

// A login while the same browser counts (plain links or the htmx button)
// keeps the login and every view it was told about: the final session is
// logged in and holds exactly as many views as counts answered 200. Counts
// that still carried the pre-login cookie are answered as failed and set no
// cookie, so none can replace the login's.
func TestLoginWhileCountingLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []string
	}{
		{"plain links", nil},
		{"htmx button", countHeaders[1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestApp(t)
			setup := ta.client()
			ta.register(setup, "counter", "counter-password")

			c := ta.client()
			if r := ta.get(c, "/count"); r.status != http.StatusOK {
				t.Fatalf("first count: %d", r.status)
			}
			const workers, each = 8, 25
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				ok      = 1 // the first count
				other   = map[int]int{}
				cookies int
				started = make(chan struct{}, workers*each)
			)
			for range workers {
				wg.Go(func() {
					for range each {
						h := fetch(c, ta.srv.URL+"/count", nil, tc.headers...)
						started <- struct{}{}
						mu.Lock()
						switch {
						case h.err != nil:
							other[-1]++
						case h.status == http.StatusOK && h.header.Get(FormStatusHeader) == "":
							ok++
						case h.status == http.StatusOK: // htmx gets a refusal as 200 (renderForm)
							n, _ := strconv.Atoi(h.header.Get(FormStatusHeader))
							other[n]++
						default:
							other[h.status]++
						}
						if h.setCookie {
							cookies++
						}
						mu.Unlock()
					}
				})
			}
			for range workers * 2 { // log in while the counts are under way
				<-started
			}
			login := fetch(c, ta.srv.URL+"/login", url.Values{"username": {"counter"}, "password": {"counter-password"}})
			wg.Wait()

			if login.status != http.StatusSeeOther {
				t.Fatalf("login: %d\n%s", login.status, login.body)
			}
			for status, n := range other {
				if status != http.StatusConflict && status != http.StatusUnauthorized {
					t.Errorf("%d counts answered %d; only 200, or 409/401 for the old cookie, are right", n, status)
				}
			}
			if cookies > 0 {
				t.Errorf("%d count responses set the session cookie", cookies)
			}
			if r := ta.get(c, "/profile"); r.status != http.StatusOK || !strings.Contains(r.body, "Hello counter") {
				t.Fatalf("after counting: profile %d, the login was lost", r.status)
			}
			if got := storedViews(t, ta.redis, ta.token(c)); got != ok {
				t.Errorf("Redis holds views = %d; %d counts were answered 200 (others: %v)", got, ok, other)
			}
			t.Logf("%d counts answered 200, others %v", ok, other)
		})
	}
}

// What a request still carrying the pre-login cookie gets, request by
// request: nothing done, no cookie, and a way on. A cookie that was never
// renewed (expired, or from another server) still starts a new session.
func TestRequestOnRenewedTokenSetsNoCookie(t *testing.T) {
	ta := newTestApp(t)
	ta.register(ta.client(), "fay", "fay-password")
	c := ta.client()
	ta.get(c, "/count")
	ta.get(c, "/count")
	old := ta.token(c)
	if r := ta.post(c, "/login", url.Values{"username": {"fay"}, "password": {"fay-password"}}); r.status != http.StatusSeeOther {
		t.Fatalf("login: %d", r.status)
	}
	withCookie := func(token string) *http.Client {
		cl := ta.client()
		u, _ := url.Parse(ta.srv.URL)
		cl.Jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: token}})
		return cl
	}

	for _, tc := range []struct {
		name       string
		path       string
		headers    []string
		status     int
		hxRefresh  bool
		wantCookie bool
	}{
		{"plain count", "/count", nil, http.StatusConflict, false, false},
		// htmx gets it as 200 with the status in a header (see renderForm).
		{"htmx count", "/count", countHeaders[1], http.StatusOK, true, false},
		// Not "Please log in": the browser is logged in, under the new cookie.
		{"plain profile", "/profile", nil, http.StatusConflict, false, false},
		{"htmx profile", "/profile", []string{"HX-Request", "true"}, http.StatusOK, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta.app.tallies.backdate("request on a renewed token", perMinuteEvery) // a line a minute: this one's
			h := fetch(withCookie(old), ta.srv.URL+tc.path, nil, tc.headers...)
			if h.status != tc.status || h.setCookie != tc.wantCookie {
				t.Errorf("status %d, sets cookie %v; want %d, %v\n%s", h.status, h.setCookie, tc.status, tc.wantCookie, h.body)
			}
			if got := h.header.Get("HX-Refresh") == "true"; got != tc.hxRefresh {
				t.Errorf("HX-Refresh: %v, want %v", got, tc.hxRefresh)
			}
			if got := h.header.Get(FormStatusHeader); tc.hxRefresh && got != "409" {
				t.Errorf("htmx: %s %q, want 409", FormStatusHeader, got)
			}
			// Named as the access log names it, never by its path.
			if !logged(ta.logs.String(), "request on a renewed token", "last_method=GET", "last_route="+tc.path) {
				t.Errorf("no line \"request on a renewed token\" with last_method=GET last_route=%s:\n%s", tc.path, ta.logs.String())
			}
		})
	}
	if got := storedViews(t, ta.redis, ta.token(c)); got != 2 {
		t.Errorf("the logged-in session holds views = %d, want the 2 from before login", got)
	}

	t.Run("never renewed", func(t *testing.T) {
		h := fetch(withCookie(strings.Repeat("A", tokenLen)), ta.srv.URL+"/count", nil)
		if h.status != http.StatusOK || !h.setCookie || h.views() != 1 {
			t.Errorf("status %d, sets cookie %v, views %d; want a new session: 200, cookie, 1", h.status, h.setCookie, h.views())
		}
	})
}

package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/views"
)

// labPage is an open /lab page as static/live.js runs it: its hook fetches
// GET /lab/steps on the stream's events it names, unless the event's data
// is what the hook says the page shows (views.AttrLiveShown).
type labPage struct {
	t       *testing.T
	ta      *testApp
	c       *http.Client
	stream  *apptest.Stream
	trigger map[string]bool // the stream's events the hook fetches on
	shown   string          // the hook's views.AttrLiveShown, "" without one
	fetches int
	body    string // the page's steps as last read
}

var labHookTag = regexp.MustCompile(`<div[^>]*data-testid="lab-hook"[^>]*>`)

// hook reads the hook from a page or from /lab/steps; false if body has none.
func (p *labPage) hook(body string) bool {
	tag := labHookTag.FindString(body)
	if tag == "" {
		return false
	}
	p.trigger = map[string]bool{}
	if m := regexp.MustCompile(`hx-trigger="([^"]*)"`).FindStringSubmatch(tag); m != nil {
		for _, f := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ',' || r == ' ' }) {
			if name, ok := strings.CutPrefix(f, "live:"); ok {
				p.trigger[name] = true
			}
		}
	}
	p.shown = ""
	if m := regexp.MustCompile(views.AttrLiveShown + `="([^"]*)"`).FindStringSubmatch(tag); m != nil {
		p.shown = m[1]
	}
	return true
}

// openLab opens /lab with c and its live stream.
func (ta *testApp) openLab(t *testing.T, c *http.Client) *labPage {
	t.Helper()
	p := &labPage{t: t, ta: ta, c: c}
	r := ta.get(c, "/lab")
	p.body = r.body
	if r.status != http.StatusOK || !p.hook(r.body) {
		t.Fatalf("GET /lab: %d, hook found: %v", r.status, labHookTag.FindString(r.body) != "")
	}
	p.stream = apptest.OpenStream(t, c, ta.srv.URL+"/live")
	return p
}

// settle acts on the stream's events until none came for quiet (the
// stream sends at most one browsers list a second), and returns how many
// times the page fetched its steps meanwhile.
func (p *labPage) settle(quiet time.Duration) int {
	p.t.Helper()
	n := 0
	for {
		select {
		case ev, ok := <-p.stream.Events:
			if !ok {
				p.t.Fatal("the lab page's stream ended")
			}
			if !p.trigger[ev.Name] || (p.shown != "" && ev.Data == p.shown) {
				continue
			}
			n++
			p.fetches++
			r := p.ta.get(p.c, "/lab/steps", "HX-Request", "true")
			if r.status != http.StatusOK {
				p.t.Fatalf("GET /lab/steps: %d", r.status)
			}
			p.hook(r.body) // a response without the hook leaves it as it was
			p.body = r.body
		case <-time.After(quiet):
			return n
		}
	}
}

// settleAll settles every page and returns each one's fetches.
func settleAll(pages []*labPage) []int {
	n := make([]int, len(pages))
	for i, p := range pages {
		n[i] = p.settle(1500 * time.Millisecond)
	}
	return n
}

// A class behind one address: every page a browser opens or leaves made
// each open /lab page of the address read its steps again, twice (the
// opening's and the leaving's browsers lists), and a /lab page twice right
// after it loaded (the list the stream sent as it opened and the one it
// published itself). A /lab page shows counts, not who has a page open: it
// reads its steps again once for news that changes what it shows (a count
// of its session or of a browser it lists), and not at all otherwise.
func TestLabReadsItsStepsOnlyForNews(t *testing.T) {
	const addr = "203.0.113.20"
	ta := newTestApp(t, trustLoopback, func(a *App) { a.Lab = true })
	agents := []string{firefoxLinux, chromeWin, safariIPhone}

	const m = 3 // lab pages open on the address
	var pages []*labPage
	for i := range m {
		c := behind(t, agents[i%len(agents)], addr)
		ta.get(c, "/count")
		p := ta.openLab(t, c)
		pages = append(pages, p)
		// Loaded just now, the page shows what is stored: nothing to read again.
		if n := p.settle(1500 * time.Millisecond); n != 0 {
			t.Errorf("lab page %d read its steps %d times right after it loaded, want 0", i, n)
		}
		for _, q := range pages[:i] {
			q.settle(0)
		}
	}
	for _, p := range pages {
		p.fetches = 0
	}

	// k other browsers of the address count once, then go from page to
	// page: each opens a page (its stream) and leaves it.
	const k = 4
	var others []*http.Client
	for i := range k {
		others = append(others, behind(t, agents[i%len(agents)], addr))
		ta.get(others[i], "/count")
	}
	settleAll(pages) // their counts are news: the lab lists them
	for i, p := range pages {
		if s := labStep(p.body, "browsers"); !strings.Contains(s, `data-done="true"`) {
			t.Errorf("lab page %d: after other browsers counted, the Two browsers step is not done:\n%s", i, s)
		}
		p.fetches = 0
	}
	// A second apart, as students' clicks come: a page's stream sends at
	// most one browsers list a second, the latest.
	for _, c := range others {
		s := apptest.OpenStream(t, c, ta.srv.URL+"/live")
		s.Next(views.SSEHello)
		time.Sleep(600 * time.Millisecond)
		s.Close()
		time.Sleep(600 * time.Millisecond)
	}
	got := settleAll(pages)
	total := 0
	for _, n := range got {
		total += n
	}
	if total != 0 {
		t.Errorf("%d browsers opening and leaving a page made the %d lab pages read their steps %v times (%d in all), want none: no count changed",
			k, m, got, total)
	}

	// A count of a browser the pages list: each page reads once.
	ta.get(others[0], "/count")
	if got := settleAll(pages); fmt.Sprint(got) != fmt.Sprint([]int{1, 1, 1}) {
		t.Errorf("one count of a listed browser: the lab pages read their steps %v times, want once each", got)
	}
	// A count of a lab page's own session (in another tab): each page reads
	// once, the counting one for its count, the others for their lists.
	ta.get(pages[0].c, "/count")
	if got := settleAll(pages); fmt.Sprint(got) != fmt.Sprint([]int{1, 1, 1}) {
		t.Errorf("one count of lab page 0's session: the lab pages read their steps %v times, want once each", got)
	}
}

// The fixation experiment's outcome is noted by the other browser's /lab
// (the one holding the planted ID): the logged-in browser's open /lab page
// hears of it once and shows the step's evidence, though no count changed.
func TestLabHearsTheOtherBrowsersFixationOutcome(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	one := ta.client()
	ta.anonymousSession(one)
	if r := ta.post(one, "/lab/switch/renewal", url.Values{"on": {"0"}}); r.status != http.StatusSeeOther {
		t.Fatalf("switching renewal off: %d", r.status)
	}
	planted := ta.token(one)
	ta.get(one, "/lab")
	two := ta.withCookie(planted)
	ta.get(two, "/lab")
	ta.register(one, "fay", "fay-password")
	page := ta.openLab(t, one)
	if n := page.settle(1500 * time.Millisecond); n != 0 {
		t.Errorf("the lab page read its steps %d times right after it loaded, want 0", n)
	}
	if s := labStep(page.body, "fixation"); strings.Contains(s, "was logged in by your login") {
		t.Fatalf("the exposed outcome is shown before the other browser saw it:\n%s", s)
	}
	if r := ta.get(two, "/lab"); !strings.Contains(labStep(r.body, "fixation"), "was logged in by your login") {
		t.Fatalf("the browser holding the planted ID: /lab %d does not note the exposed outcome", r.status)
	}
	if n := page.settle(1500 * time.Millisecond); n != 1 {
		t.Errorf("the logged-in browser's lab page read its steps %d times after the other browser's /lab, want once", n)
	}
	if s := labStep(page.body, "fixation"); !strings.Contains(s, "was logged in by your login") {
		t.Errorf("the logged-in browser's open lab page does not show the exposed outcome:\n%s", s)
	}
}

// A stream sends the list as it opens, then hears the list its own opening
// published (for the other pages' "page open"): the same list, not sent
// twice.
func TestStreamSendsItsListOnceAsItOpens(t *testing.T) {
	ta := newTestApp(t, trustLoopback)
	ff := behind(t, firefoxLinux, "203.0.113.21")
	ta.get(ff, "/count")
	s := apptest.OpenStream(t, ff, ta.srv.URL+"/live")
	s.Next(views.SSEBrowsers)
	quiet := time.After(2 * time.Second) // past browsersEvery
	for {
		select {
		case ev := <-s.Events:
			if ev.Name == views.SSEBrowsers {
				t.Fatalf("a second browsers list right after the first, unchanged: %.80q", ev.Data)
			}
		case <-quiet:
			return
		}
	}
}

// The httponly experiment's outcome is noted by the tab that ran it: the
// same session's /lab page open in another tab hears of it once and shows
// the step done, as it does for the fixation outcome.
func TestLabHearsTheHTTPOnlyOutcomeOfAnotherTab(t *testing.T) {
	ta := newTestApp(t, func(a *App) { a.Lab = true }).serve()
	c := ta.client()
	ta.register(c, "hal", "hal-password")
	page := ta.openLab(t, c)
	if n := page.settle(1500 * time.Millisecond); n != 0 {
		t.Errorf("the lab page read its steps %d times right after it loaded, want 0", n)
	}
	const seen = "a script read no session ID (HttpOnly)"
	if s := labStep(page.body, "httponly"); strings.Contains(s, seen) {
		t.Fatalf("the httponly step shows an outcome before the experiment:\n%s", s)
	}
	if r := ta.post(c, "/lab/read", url.Values{"read": {""}}, "HX-Request", "true"); r.status != http.StatusOK {
		t.Fatalf("POST /lab/read from the other tab: %d\n%s", r.status, r.body)
	}
	if n := page.settle(1500 * time.Millisecond); n != 1 {
		t.Errorf("the open lab page read its steps %d times after the other tab's experiment, want once", n)
	}
	if s := labStep(page.body, "httponly"); !strings.Contains(s, seen) {
		t.Errorf("the open lab page does not show the outcome:\n%s", s)
	}
}

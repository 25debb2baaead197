package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/useragent"
)

// The lab (/lab): a student walks through every step of the tutorial in
// real browsers and each step ticks by itself, from what the app recorded.

// labStepDone is data-done of a step on the page now ("" when absent).
func (b *browser) labStepDone(step string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`document.querySelector('[data-testid=lab-step][data-step=%q]')?.dataset.done ?? ''`, step))
}

// waitLabStep waits until a step shows done (or not), without a reload.
func (b *browser) waitLabStep(step string, done bool) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("lab step %s done=%v", step, done), fmt.Sprintf(
		`document.querySelector('[data-testid=lab-step][data-step=%q]')?.dataset.done === %q`, step, fmt.Sprint(done)))
}

// labEvidence is the evidence text of a step.
func (b *browser) labEvidence(step string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(
		`(document.querySelector('[data-testid=lab-step][data-step=%q] [data-testid=lab-evidence]')?.textContent ?? '').replace(/\s+/g, ' ')`, step))
}

// labBlocked is what a step says cannot be done here ("" for nothing).
func (b *browser) labBlocked(step string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(
		`(document.querySelector('[data-testid=lab-step][data-step=%q] [data-testid=lab-blocked]')?.textContent ?? '').replace(/\s+/g, ' ')`, step))
}

// labDo is a step's line of what to do.
func (b *browser) labDo(step string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(
		`(document.querySelector('[data-testid=lab-step][data-step=%q] [data-testid=lab-do]')?.textContent ?? '').replace(/\s+/g, ' ')`, step))
}

// checkPath checks that every value in the lab page's picture of the path
// is this request's: the browser as the browsers list names it, the cookie
// as the browser holds it (cut short), this instance and process, the
// session's key and a TTL no longer than the idle timeout, the other
// browsers of this computer as Redis lists them, and the other instances.
func (b *browser) checkPath(rs *redistest.Server, base, instance string, wantInstances []string) {
	t := b.t
	t.Helper()
	texts := eval[map[string][]string](b, `(() => {
		const m = {};
		for (const e of document.querySelectorAll('[data-testid=lab-path] text[data-testid]')) (m[e.dataset.testid] ??= []).push(e.textContent);
		return m;
	})()`)
	one := func(id string) string {
		if len(texts[id]) != 1 {
			t.Errorf("the path picture has %d %s, want 1: %v", len(texts[id]), id, texts)
			return ""
		}
		return texts[id][0]
	}
	c := b.cookie(base)
	if c == nil {
		t.Fatal("no session cookie")
	}
	cut := c.Value[:6] + "…"
	attrs := []string{"Path=" + c.Path}
	if c.Secure {
		attrs = append(attrs, "Secure")
	}
	if c.HTTPOnly {
		attrs = append(attrs, "HttpOnly")
	}
	attrs = append(attrs, "SameSite="+c.SameSite.String())
	for id, want := range map[string]string{
		"lab-path-browser":  useragent.Parse(eval[string](b, `navigator.userAgent`)).String(),
		"lab-path-cookie":   "session=" + cut,
		"lab-path-attrs":    strings.Join(attrs, "; "),
		"lab-path-instance": "Instance " + instance,
		"lab-path-process":  "process " + b.processID(),
	} {
		if got := one(id); got != want {
			t.Errorf("the path picture's %s is %q, want %q", id, got, want)
		}
	}
	key, ttl, _ := strings.Cut(one("lab-path-key"), " · TTL ")
	if d, err := time.ParseDuration(ttl); key != "sess:"+cut || err != nil || d <= 0 || d > 30*time.Minute {
		t.Errorf("the path picture's key is %q with TTL %q, want sess:%s and at most the idle timeout, 30m", key, ttl, cut)
	}
	// The other browsers: this computer's list as Redis holds it, newest
	// first, without this session, three at most.
	type row struct {
		line string
		at   int64
	}
	var rows []row
	fields := strings.Split(rs.MustDo("HGETALL", "browsers:loopback"), "\n")
	for i := 0; i+1 < len(fields); i += 2 {
		var v struct {
			Device string `json:"device"`
			Views  int    `json:"views"`
			At     int64  `json:"at"`
		}
		if err := json.Unmarshal([]byte(fields[i+1]), &v); err != nil {
			t.Fatalf("browsers:loopback %s: %v", fields[i], err)
		}
		if fields[i] == sessions.ID(c.Value) {
			continue
		}
		line := fmt.Sprintf("%s: %d views", v.Device, v.Views)
		if v.Views == 1 {
			line = v.Device + ": 1 view"
		}
		rows = append(rows, row{line, v.At})
	}
	slices.SortStableFunc(rows, func(x, y row) int { return cmp.Compare(y.at, x.at) })
	var wantOthers []string
	for _, r := range rows[:min(3, len(rows))] {
		wantOthers = append(wantOthers, r.line)
	}
	if got := texts["lab-path-other"]; len(wantOthers) == 0 || !slices.Equal(got, wantOthers) {
		t.Errorf("the path picture's other browsers are %q, want %q (browsers:loopback in Redis)", got, wantOthers)
	}
	if got := texts["lab-path-instance-other"]; !slices.Equal(got, wantInstances) {
		t.Errorf("the path picture's other instances are %q, want %q", got, wantInstances)
	}
	if all := eval[string](b, `document.querySelector('[data-testid=lab-path]').textContent`); strings.Contains(all, c.Value) {
		t.Error("the path picture shows the whole session token")
	}
}

// screenshotOf saves one element (by test id), at desktop and phone
// widths, as <name>-desktop.png and <name>-phone.png: the README shows the
// lab's steps and picture, not the whole page around them.
func (b *browser) screenshotOf(name, testID string) {
	b.t.Helper()
	dir, err := screenshotDir()
	if err != nil {
		b.t.Fatalf("screenshot dir: %v", err)
	}
	for _, v := range []viewport{desktop, phone} {
		b.do(v.name+" width", chromedp.EmulateViewport(v.width, v.height))
		png := step(b, "screenshot "+testID+" at "+v.name, chromedp.Screenshot(byTestID(testID), chromedp.NodeVisible))
		if err := os.WriteFile(filepath.Join(dir, name+"-"+v.name+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.do("reset viewport", chromedp.EmulateViewport(desktop.width, desktop.height))
}

// cookie is this browser's session cookie as the browser holds it.
func (b *browser) cookie(url string) *network.Cookie {
	b.t.Helper()
	res := step(b, "read cookies", func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	})
	for _, c := range res.Cookies {
		if c.Name == "session" || c.Name == "__Host-session" { // without and with -cookie-secure
			return c
		}
	}
	return nil
}

// plant pastes a session ID into "Use a session ID" on /lab at base.
func (b *browser) plant(base, token string) {
	b.t.Helper()
	b.open(base + "/lab")
	b.markPage()
	b.do("paste a session ID",
		chromedp.SendKeys(byTestID("lab-use-id"), token, chromedp.NodeVisible),
		chromedp.Click(byTestID("lab-use"), chromedp.NodeVisible))
	b.waitFor("the lab page again", `window.sessionlabMark !== true && location.pathname === '/lab' && document.readyState === 'complete' && document.querySelector('[data-testid=lab-step]') !== null`)
}

// waitLoggedOut reloads until the page says nobody is logged in. The open
// page may be leaving by itself (its session ended), so a reload can be cut
// short; waitFor tries again on the new page.
func (b *browser) waitLoggedOut(who string) {
	b.t.Helper()
	b.waitFor(who+" to be logged out", `(() => {
		if (document.readyState !== 'complete') return false;
		if (document.querySelector('[data-testid=whoami] small') === null) return true;
		if (!window.labReloaded) { window.labReloaded = true; location.reload(); }
		return false;
	})()`)
}

// whoami is the header's logged-in user ("" when anonymous).
func (b *browser) whoami() string {
	b.t.Helper()
	return eval[string](b, `document.querySelector('[data-testid=whoami] small')?.textContent ?? ''`)
}

// labReads is how many times the page read its steps again (GET /lab/steps).
func (b *browser) labReads() int {
	b.t.Helper()
	return eval[int](b, `performance.getEntriesByType('resource').filter(e => e.name.includes('/lab/steps')).length`)
}

// Every step to a tick: two browsers, a restart through the button, two
// instances on one Redis, and both experiments, with `task run`'s flags.
func TestBrowserLabEveryStepTicks(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	t.Parallel() // its own Redis and apps
	rs := redistest.Start(t)
	a := apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "a", "-demo-controls", "-lab", "-debug-addr", "127.0.0.1:0")
	one := newBrowser(t)
	two := one.privateWindow()

	one.open(a.URL + "/lab")
	for _, s := range []string{"store", "count", "browsers", "restart", "servers", "httponly", "fixation"} {
		if got := one.labStepDone(s); got != "false" {
			t.Fatalf("a new browser's lab step %s: data-done=%q, want false", s, got)
		}
	}
	if got := one.text("lab-progress"); got != "0 of 7 done" {
		t.Errorf("header progress %q, want 0 of 7 done", got)
	}

	// store, count: two views in this browser's session.
	one.open(a.URL + "/count")
	one.waitText("view-count", "1")
	if got := one.text("lab-progress"); got != "1 of 7 done" {
		t.Errorf("after one view the header says %q, want 1 of 7 done (store)", got)
	}
	one.count(2)
	// The header's progress follows the counter, without a reload.
	one.waitText("lab-progress", "2 of 7 done")
	one.open(a.URL + "/lab")
	for _, s := range []string{"store", "count"} {
		one.waitLabStep(s, true)
	}
	if ev := one.labEvidence("store"); !strings.Contains(ev, "sess:") || !strings.Contains(ev, "is in Redis now") {
		t.Errorf("store evidence %q, want the sess: key read from Redis", ev)
	}
	if ev := one.labEvidence("count"); !strings.Contains(ev, "views = 2") {
		t.Errorf("count evidence %q, want views = 2", ev)
	}
	waitStreams(t, a, 1)
	// Loaded just now, the page shows what is stored: its stream's first
	// events (the list, its own opening's list) make it read nothing again.
	time.Sleep(1500 * time.Millisecond) // past the stream's one list a second
	if n := one.labReads(); n != 0 {
		t.Errorf("the lab page read its steps %d times right after it loaded, want 0", n)
	}

	// browsers: a second browser counts; the open lab page ticks live.
	two.open(a.URL + "/count")
	two.waitText("view-count", "1")
	one.waitLabStep("browsers", true)
	if ev := one.labEvidence("browsers"); !strings.Contains(ev, "2 views") || !strings.Contains(ev, "1 view") {
		t.Errorf("browsers evidence %q, want both browsers' counts", ev)
	}
	// The picture of the path follows the counts too, without a reload.
	one.markPage()
	two.count(2)
	one.waitFor("the other browser's second view in the path picture", `[...document.querySelectorAll('[data-testid=lab-path-other]')].some(e => e.textContent.endsWith(': 2 views'))`)
	if one.unmarked() {
		t.Error("the lab page reloaded to show the other browser's count")
	}
	// The other browser leaving its page and opening another, which counts:
	// the lab page reads once, for the count (who has a page open is not
	// on the lab).
	reads := one.labReads()
	two.open(a.URL + "/") // no live stream: two's closes
	waitStreams(t, a, 1)
	two.open(a.URL + "/count")
	two.waitText("view-count", "3")
	one.waitFor("the other browser's third view in the path picture", `[...document.querySelectorAll('[data-testid=lab-path-other]')].some(e => e.textContent.endsWith(': 3 views'))`)
	time.Sleep(1500 * time.Millisecond)
	if n := one.labReads() - reads; n != 1 {
		t.Errorf("the other browser left a page and opened one that counted: the lab page read its steps %d times, want once (for the count)", n)
	}

	// restart: through the footer's button, then a count on the new process.
	before := one.processID()
	one.click("restart")
	one.waitFor("a new process", `document.querySelector('[data-testid=live-status] [data-testid=live-survived]') !== null`)
	one.open(a.URL + "/count")
	one.waitText("view-count", "3")
	after := one.processID()
	one.open(a.URL + "/lab")
	one.waitLabStep("restart", true)
	if ev := one.labEvidence("restart"); !strings.Contains(ev, "process "+after) || !strings.Contains(ev, "by process "+before) || !strings.Contains(ev, "views = 3") {
		t.Errorf("restart evidence %q, want a count by %s carrying on from %s", ev, after, before)
	}

	// servers: alone on its Redis, instance a says the step cannot be done
	// here and what to run; beside instance b, that both share the Redis.
	one.open(a.URL + "/lab")
	if got := one.labStepDone("servers"); got != "false" {
		t.Errorf("servers step with one instance: data-done=%q", got)
	}
	if blocked := one.labBlocked("servers"); !strings.Contains(blocked, "Only this instance (a) uses this Redis") || !strings.Contains(blocked, "go tool task demo") {
		t.Errorf("servers step with one instance says %q, want that it cannot be done here and to run go tool task demo", blocked)
	}
	other := apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "b", "-lab")
	one.open(a.URL + "/lab")
	if blocked := one.labBlocked("servers"); blocked != "" {
		t.Errorf("servers step beside instance b still says %q", blocked)
	}
	if do := one.labDo("servers"); !strings.Contains(do, "Instances a and b share this Redis now") {
		t.Errorf("servers step beside instance b says %q, want that both share this Redis", do)
	}
	// The same cookie on instance b (same host, another port).
	one.open(other.URL + "/count")
	one.waitText("view-count", "4")
	bProcess := one.processID()
	one.open(a.URL + "/lab")
	one.waitLabStep("servers", true)
	if ev := one.labEvidence("servers"); !strings.Contains(ev, "instance b (process "+bProcess+")") || !strings.Contains(ev, "made by instance a") {
		t.Errorf("servers evidence %q, want a count by instance b (process %s) after one by instance a", ev, bProcess)
	}

	// fixation, without renewal: browser two takes this anonymous
	// session's ID, browser one logs in, browser two is logged in too.
	one.click("lab-renewal-off")
	one.waitFor("the weakened banner", `document.querySelector('[data-testid=lab-weakened]') !== null`)
	planted := one.sessionCookie(a.URL)
	two.plant(a.URL, planted)
	one.register(&site{app: a}, "alice", "alice-password")
	if got := one.sessionCookie(a.URL); got != planted {
		t.Fatalf("with renewal off the login changed the session ID")
	}
	two.open(a.URL + "/lab")
	if got := two.whoami(); got != "alice" {
		t.Fatalf("the browser holding the planted ID is %q after the login, want alice", got)
	}
	// fixation, with renewal: the planted copy is left with nothing.
	one.open(a.URL + "/lab")
	one.click("lab-renewal-on")
	one.waitFor("no weakened banner", `location.pathname === '/lab' && document.readyState === 'complete' && document.querySelector('[data-testid=lab-weakened]') === null`)
	planted = one.sessionCookie(a.URL)
	two.plant(a.URL, planted)
	one.login(&site{app: a}, "alice", "alice-password")
	if one.sessionCookie(a.URL) == planted {
		t.Fatal("with renewal on the login kept the session ID")
	}
	two.waitLoggedOut("the browser holding the planted ID, after a login that renewed it")
	// While it still sends the planted cookie, its lab page says so in the
	// picture of the request as in the banner: a session that ended.
	if sent := two.sessionCookie(a.URL); sent != "" {
		two.open(a.URL + "/lab")
		// An SVG <text> has no innerText: its textContent, as the other path checks read it.
		if got := eval[string](two, `document.querySelector('[data-testid=lab-path-cookie]')?.textContent ?? ''`); got != "session="+sent[:6]+"… (ended)" {
			t.Errorf("the planted copy's lab picture says the cookie is %q, want the ID it sent cut short, marked (ended)", got)
		}
	}
	one.open(a.URL + "/lab")
	one.waitLabStep("fixation", true)

	// httponly: a script reads nothing; with the switch, it reads the ID.
	// A third browser, with a session of its own (two's cookie was just
	// renewed away, and a renewed cookie is answered "renewed" for sessions.RenewalInFlight).
	three := one.privateWindow()
	three.open(a.URL + "/count")
	three.waitText("view-count", "1")
	one.click("lab-read")
	one.waitFor("the hidden outcome", `document.querySelector('[data-testid=lab-read-hidden]') !== null`)
	if saw := one.text("lab-script-saw"); strings.Contains(saw, one.sessionCookie(a.URL)) {
		t.Fatalf("with HttpOnly a script read the session ID")
	}
	one.click("lab-httponly-off")
	one.waitFor("the weakened banner", `document.querySelector('[data-testid=lab-weakened]') !== null`)
	if c := one.cookie(a.URL); c == nil || c.HTTPOnly {
		t.Fatalf("after the switch browser one's cookie is %+v, want it without HttpOnly", c)
	}
	// The switch changed nothing for the other browser's cookie.
	if c := three.cookie(a.URL); c == nil || !c.HTTPOnly {
		t.Errorf("browser three's cookie after browser one's switch: %+v, want HttpOnly", c)
	}
	three.open(a.URL + "/lab")
	if three.present("lab-weakened") {
		t.Error("browser three's page says its session is weakened")
	}
	one.click("lab-read")
	one.waitFor("the exposed outcome", `document.querySelector('[data-testid=lab-read-exposed]') !== null`)
	stolen := one.sessionCookie(a.URL)
	if saw := one.text("lab-script-saw"); !strings.Contains(saw, stolen) {
		t.Fatalf("without HttpOnly the script read %q, want the session ID in it", saw)
	}
	one.waitLabStep("httponly", true)
	// What an XSS would do with it: another browser becomes you.
	three.plant(a.URL, stolen)
	if got := three.whoami(); got != "alice" {
		t.Fatalf("the browser given the stolen ID is %q, want alice", got)
	}
	// One ID, one session: the sessions page shows it once, in both
	// browsers, and that row names both browsers.
	var sessionIDs []string
	for _, b := range []*browser{one, three} {
		b.open(a.URL + "/sessions")
		holders := eval[[]string](b, `[...document.querySelectorAll('[data-testid=session-row][data-current=true] [data-testid=lab-holder]')].map(e => e.dataset.this)`)
		if len(holders) != 2 || strings.Count(strings.Join(holders, " "), "true") != 1 {
			t.Errorf("the sessions page's row of the stolen session names browsers %v, want two, this one marked", holders)
		}
		sessionIDs = append(sessionIDs, eval[string](b, `document.querySelector('[data-testid=session-row][data-current=true]')?.dataset.sessionId ?? ''`))
	}
	three.screenshot("lab-sessions")
	if sessionIDs[0] == "" || sessionIDs[0] != sessionIDs[1] {
		t.Errorf("the two browsers' current sessions are %q, want one and the same", sessionIDs)
	}
	// Switching back renews the ID: the stolen copy is worthless.
	one.open(a.URL + "/lab")
	one.click("lab-httponly-on")
	one.waitFor("no weakened banner", `location.pathname === '/lab' && document.readyState === 'complete' && document.querySelector('[data-testid=lab-weakened]') === null`)
	if c := one.cookie(a.URL); c == nil || !c.HTTPOnly || c.Value == stolen {
		t.Errorf("after switching back browser one's cookie is %+v, want a new ID with HttpOnly", c)
	}
	three.waitLoggedOut("the browser holding the stolen ID, after the switch renewed it")

	one.open(a.URL + "/lab")
	for _, s := range []string{"store", "count", "browsers", "restart", "servers", "httponly", "fixation"} {
		if got := one.labStepDone(s); got != "true" {
			t.Errorf("at the end lab step %s: data-done=%q, want true", s, got)
		}
	}
	if got := one.text("lab-progress"); got != "7 of 7 done" {
		t.Errorf("header progress %q, want 7 of 7 done", got)
	}
	// The picture is this request's path, with this request's values.
	one.checkPath(rs, a.URL, "a", []string{"b · process " + bProcess + " · served this session"})
	one.screenshot("lab")
	one.screenshotOf("lab-live", "lab-live")
	saveForDocs(t, "lab-live-desktop.png", "lab.png")
}

// Without -lab there are no switches: no controls on the page, and the
// switch routes do not exist; the steps still tick.
func TestBrowserLabHasNoSwitchesWithoutTheFlag(t *testing.T) {
	t.Parallel()
	s := startSite(t)
	b := newBrowser(t)
	b.open(s.url("/count"))
	b.waitText("view-count", "1")
	b.open(s.url("/lab"))
	b.waitLabStep("store", true)
	for _, id := range []string{"lab-httponly", "lab-fixation", "lab-httponly-off", "lab-renewal-off", "lab-use", "lab-read"} {
		if b.present(id) {
			t.Errorf("without -lab the lab page shows %s", id)
		}
	}
	for _, step := range []string{"httponly", "fixation"} {
		if !strings.Contains(b.labBlocked(step), "run with -lab") {
			t.Errorf("without -lab the %s experiment does not say to run with -lab", step)
		}
	}
	for _, path := range []string{"/lab/switch/httponly", "/lab/switch/renewal", "/lab/read", "/lab/use"} {
		resp, err := http.Post(s.url(path), "application/x-www-form-urlencoded", strings.NewReader("on=0"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST %s without -lab: %d, want 404 or 405", path, resp.StatusCode)
		}
	}
	if c := b.cookie(s.app.URL); c == nil || !c.HTTPOnly {
		t.Errorf("session cookie %+v, want HttpOnly", c)
	}
}

// nonLoopback is an IPv4 address of this computer that is not loopback,
// "" when it has none.
func nonLoopback() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// Secure, live: with -cookie-secure the browser keeps the Secure cookie at
// localhost over plain HTTP (a secure context) and the count goes on; at
// this computer's network address it drops the cookie, so every request
// starts a new session, and /lab says which of the two holds, as the
// browser decides it.
func TestBrowserLabSecureCookieLive(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	ip := nonLoopback()
	if ip == "" {
		t.Skip("this computer has no network address but loopback")
	}
	t.Parallel()
	rs := redistest.Start(t)
	app := apptest.Start(t, bin, "-redis", rs.URL(), "-addr", "0.0.0.0:0", "-instance", "secure", "-lab", "-cookie-secure")
	_, port, _ := net.SplitHostPort(app.Addr)
	local, lan := "http://localhost:"+port, "http://"+net.JoinHostPort(ip, port)
	b := newBrowser(t)

	b.open(local + "/count")
	b.waitText("view-count", "1")
	b.waitFor("no word of a dropped cookie at localhost", `document.querySelector('[data-testid=cookie-dropped]') === null`)
	b.count(2)
	b.open(local + "/lab")
	if c := b.cookie(local); c == nil || c.Name != "__Host-session" || !c.Secure {
		t.Fatalf("at localhost the browser holds %+v, want the Secure cookie __Host-session", c)
	}
	if line := b.text("lab-set-cookie"); !strings.Contains(line, "__Host-session=") || !strings.Contains(line, "; Secure") {
		t.Errorf("the Set-Cookie line %q, want __Host-session with Secure", line)
	}
	b.waitFor("the secure-context explanation", `!document.querySelector('[data-testid=lab-context-secure]').hidden && document.querySelector('[data-testid=lab-context-insecure]').hidden`)

	for range 2 {
		b.open(lan + "/count")
		b.waitText("view-count", "1")
	}
	// The count page says why it stays at 1, as /lab does.
	if got := b.text("cookie-dropped"); !strings.Contains(got, "stay at 1") || !strings.Contains(got, "drops the cookie") {
		t.Errorf("at %s /count says %q, want why the count stays at 1", lan, got)
	}
	if c := b.cookie(lan); c != nil {
		t.Errorf("at %s the browser kept the Secure cookie over plain HTTP: %+v", lan, c)
	}
	b.open(lan + "/lab")
	b.waitFor("the insecure-context explanation", `!document.querySelector('[data-testid=lab-context-insecure]').hidden && document.querySelector('[data-testid=lab-context-secure]').hidden`)
	if got := b.text("lab-context-insecure"); !strings.Contains(got, "starts a new session") || !strings.Contains(got, "This one brought no session cookie either") {
		t.Errorf("at the network address /lab says %q", got)
	}
}

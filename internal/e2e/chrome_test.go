package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// This file drives headless Chromium for the browser tests: one browser
// process per package (see chromium), a browser context per test.

const (
	// stepTimeout bounds one browser step; it only turns a hang into a
	// failure, it never decides a pass.
	stepTimeout = 20 * time.Second
	// startTimeout bounds the start of Chromium.
	startTimeout = 60 * time.Second
)

// Viewports the screenshots are taken at.
var (
	desktop = viewport{"desktop", 1280, 800}
	phone   = viewport{"phone", 390, 844}
)

type viewport struct {
	name          string
	width, height int64
}

// chromiumPath finds the browser: $CHROMIUM, else Debian's chromium package.
// The /usr/bin/chromium wrapper works too, but prints a harmless shell error.
func chromiumPath() (string, error) {
	candidates := []string{"/usr/lib/chromium/chromium", "/usr/bin/chromium"}
	if p := os.Getenv("CHROMIUM"); p != "" {
		candidates = []string{p}
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Chromium at %s (apt-get install chromium, or set CHROMIUM)", strings.Join(candidates, " or "))
}

// site is one app process on its own Redis, for one browser test.
type site struct {
	redis *redistest.Server
	app   *apptest.Process
}

func startSite(t *testing.T) *site {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	rs := redistest.Start(t)
	return &site{redis: rs, app: apptest.Start(t, bin, "-redis", rs.URL(), "-instance", "browser-test", "-debug-addr", "127.0.0.1:0")}
}

// url is an absolute URL of the app.
func (s *site) url(path string) string { return s.app.URL + path }

// browser is one page in headless Chromium. Every message the page writes to
// the console is kept, and the test fails at its end on any JavaScript
// error or Content-Security-Policy violation.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	console  []string // everything, for the failure log
	problems []string // what fails the test

	noJS bool // scripts are off: every click is a page load
}

// newBrowser gives t a browser of its own: a new browser context (own
// cookies and storage, like a fresh browser profile) in the package's one
// Chromium, closed when t ends. A browser that cannot start fails the test
// with a one-line reason; -short skips browser tests explicitly.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	root, err := chromium.get()
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	b := &browser{t: t}
	ctx, cancel := chromedp.NewContext(root, chromedp.WithNewBrowserContext(), chromedp.WithListener(b.listen))
	t.Cleanup(cancel)
	b.ctx = ctx
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browser: open a browser context: %s", oneLine(err.Error(), 300))
	}
	t.Cleanup(b.report)
	return b
}

// chromium is the package's one Chromium process, started by the first
// browser test and stopped by TestMain: one process per package instead
// of one per test, which on a small machine was most of a browser test's
// time. Each test still gets its own browser context.
var chromium sharedChromium

type sharedChromium struct {
	once   sync.Once
	ctx    context.Context
	err    error
	cancel func()
}

// get starts Chromium once and returns the context browser contexts are
// made from.
func (c *sharedChromium) get() (context.Context, error) {
	c.once.Do(func() { c.ctx, c.cancel, c.err = startChromium() })
	return c.ctx, c.err
}

// stop ends Chromium, if it was started, and removes its directory.
func (c *sharedChromium) stop() {
	if c.cancel != nil {
		c.cancel()
	}
}

func startChromium() (context.Context, func(), error) {
	path, err := chromiumPath()
	if err != nil {
		return nil, nil, err
	}
	// Not t.TempDir: Chromium's socket path under TMPDIR must stay within
	// 107 bytes.
	dir, err := os.MkdirTemp("", "chromium-")
	if err != nil {
		return nil, nil, err
	}
	profile, tmp := filepath.Join(dir, "profile"), filepath.Join(dir, "tmp")
	for _, d := range []string{profile, tmp} {
		if err := os.Mkdir(d, 0o700); err != nil {
			_ = os.RemoveAll(dir)
			return nil, nil, err
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.Env("TMPDIR="+tmp),
		chromedp.WindowSize(int(desktop.width), int(desktop.height)),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop := func() {
		cancel()
		cancelAlloc() // waits for the browser to exit
		_ = os.RemoveAll(dir)
	}
	// The first Run binds the browser's life to ctx, so the start-up
	// limit is a timer, not a context deadline.
	timer := time.AfterFunc(startTimeout, cancel)
	err = chromedp.Do(ctx)
	timer.Stop()
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("Chromium (%s) did not start: %s", path, oneLine(err.Error(), 300))
	}
	return ctx, stop, nil
}

// privateWindow opens a second, independent page in the same Chromium, in a
// new browser context: its own cookies and storage, like a private window.
func (b *browser) privateWindow() *browser {
	b.t.Helper()
	return b.openPage("a private window", chromedp.WithNewBrowserContext())
}

// newTab opens another tab in the same browser: same cookies, same session.
func (b *browser) newTab() *browser {
	b.t.Helper()
	return b.openPage("a tab")
}

// openPage opens another page in the same Chromium, with its own console
// checks.
func (b *browser) openPage(what string, opts ...chromedp.ContextOption) *browser {
	b.t.Helper()
	p := &browser{t: b.t}
	ctx, cancel := chromedp.NewContext(b.ctx, append(opts, chromedp.WithListener(p.listen))...)
	p.ctx = ctx
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("browser: open %s: %v", what, err)
	}
	b.t.Cleanup(p.report)
	return p
}

// listen runs in the tab's event loop, in order, before the reply to any
// later command, so a check after a step sees every message of that step.
func (b *browser) listen(ev any) {
	var line string
	var bad bool
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		line = "exception: " + d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			line += " " + firstLine(d.Exception.Description)
		}
		bad = true
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			switch {
			case a.Description != "":
				args = append(args, a.Description)
			case len(a.Value) > 0:
				args = append(args, string(a.Value))
			}
		}
		line = "console." + string(ev.Type) + ": " + strings.Join(args, " ")
		// No exemptions: the app's own script (static/live.js) handles a
		// dropped stream itself and logs nothing. (The 4xx a form expects
		// are not errors to htmx, see views.htmxConfig, so any "Response
		// Status Error Code" is a broken request.)
		bad = ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert
	case *log.EventEntryAdded:
		e := ev.Entry
		line = fmt.Sprintf("log %s/%s: %s", e.Source, e.Level, e.Text)
		if e.URL != "" {
			line += " (" + e.URL + ")"
		}
		// A page answered with a 4xx is logged by the network source; the
		// tests check statuses themselves. A static file that fails to load
		// is a broken page.
		bad = e.Source == log.EntrySourceSecurity || e.Source == log.EntrySourceJavascript ||
			e.Level == log.EntryLevelError && (e.Source != log.EntrySourceNetwork || strings.Contains(e.URL, "/static/"))
	default:
		return
	}
	if strings.Contains(line, "Content Security Policy") || strings.Contains(line, "Refused to") {
		bad = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.console = append(b.console, line)
	if bad {
		b.problems = append(b.problems, line)
	}
}

// report fails the test on any JavaScript error or CSP violation.
func (b *browser) report() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("browser console: %s", p)
	}
	if b.t.Failed() && len(b.console) > 0 {
		b.t.Logf("browser console:\n  %s", strings.Join(b.console, "\n  "))
	}
}

// step runs one action with a time limit and returns its value; on error it
// fails the test, naming what was being done.
func step[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		b.t.Fatalf("browser: %s (at %s): %v", what, loc, err)
	}
	return v
}

// do runs steps that return nothing.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	step(b, what, chromedp.Steps(steps...))
}

// byTestID selects the first element with this data-testid.
func byTestID(id string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf("[data-testid=%q]", id))
}

// open navigates to url and waits for the page's main content.
func (b *browser) open(url string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("main")))
}

// text is the visible text of the first element with this data-testid,
// once it is visible.
func (b *browser) text(testID string) string {
	b.t.Helper()
	return strings.TrimSpace(step(b, "read "+testID, chromedp.Text(byTestID(testID), chromedp.NodeVisible)))
}

// present reports whether an element with this data-testid is on the page
// now, without waiting.
func (b *browser) present(testID string) bool {
	b.t.Helper()
	return eval[bool](b, fmt.Sprintf(`document.querySelector('[data-testid=%q]') !== null`, testID))
}

// eval evaluates a JavaScript expression in the page (DevTools evaluation
// is not bound by the page's CSP).
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	return step(b, "evaluate "+expr, chromedp.Evaluate[T](expr))
}

// waitFor checks a JavaScript condition every 25 ms until it holds. A check
// cut short by a page load (a form post, an HX-Redirect, Back) is tried
// again on the new page.
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(stepTimeout)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		cancel()
		var exc *chromedp.ExceptionError
		switch {
		case err == nil && ok:
			return
		case errors.As(err, &exc):
			b.t.Fatalf("browser: wait until %s: the condition throws: %v", what, err)
		case err != nil && !navigatedAway(err) && !errors.Is(err, context.DeadlineExceeded):
			b.t.Fatalf("browser: wait until %s: %v", what, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body?.innerText.slice(0, 3000) ?? ''`))
	b.t.Fatalf("browser: wait until %s: not within %v (at %s; last error: %v); the page says:\n%s", what, stepTimeout, loc, err, text)
}

// navigatedAway tells an evaluation cut short by a page load from a failure.
func navigatedAway(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "navigated or closed") || strings.Contains(msg, "context was destroyed") ||
		strings.Contains(msg, "Cannot find context")
}

// waitText waits until the element with this data-testid shows want and
// htmx has settled. New content is live only after the settle: a click on a
// just-swapped control before then would be a plain link's page load.
func (b *browser) waitText(testID, want string) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("%s shows %q", testID, want), fmt.Sprintf(
		`(document.querySelector('[data-testid=%q]')?.textContent ?? '').trim() === %q && %s`, testID, want, htmxSettled))
}

// htmxSettled holds when no htmx swap is under way.
const htmxSettled = `document.querySelector('.htmx-swapping, .htmx-settling, .htmx-added') === null`

// fill types into a form field found by its label's id.
func (b *browser) fill(id, value string) {
	b.t.Helper()
	b.do("fill #"+id,
		chromedp.WaitVisible(chromedp.ID(id)),
		chromedp.Clear(chromedp.ID(id)),
		chromedp.SendKeys(chromedp.ID(id), value))
}

// click clicks the element with this data-testid.
func (b *browser) click(testID string) {
	b.t.Helper()
	b.do("click "+testID, chromedp.Click(byTestID(testID), chromedp.NodeVisible))
}

// back is the browser's Back button. It does not wait for a load event: a
// page restored from the back/forward cache has none.
func (b *browser) back(wantPath string) {
	b.t.Helper()
	b.do("go back", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		h, err := cdp.Call(ctx, t, page.GetNavigationHistory, cdp.Empty{})
		if err != nil {
			return err
		}
		if h.CurrentIndex < 1 {
			return errors.New("no page to go back to")
		}
		_, err = cdp.Call(ctx, t, page.NavigateToHistoryEntry,
			page.NavigateToHistoryEntryParams{EntryID: h.Entries[h.CurrentIndex-1].ID})
		return err
	}))
	b.waitFor("back at "+wantPath, fmt.Sprintf(
		`location.pathname + location.search === %q && document.readyState === 'complete'`, wantPath))
}

// path is the path (and query) of the page's URL.
func (b *browser) path() string {
	b.t.Helper()
	return eval[string](b, `location.pathname + location.search`)
}

// sessionCookie is the value of the app's session cookie, "" if there is none.
func (b *browser) sessionCookie(url string) string {
	b.t.Helper()
	res := step(b, "read cookies", func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	})
	for _, c := range res.Cookies {
		if c.Name == "session" {
			return c.Value
		}
	}
	return ""
}

// disableJavaScript turns off scripts for this page, as a user might.
func (b *browser) disableJavaScript() {
	b.t.Helper()
	b.do("disable JavaScript", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}))
	b.noJS = true
}

// screenshotDir is where screenshots go: $SCREENSHOT_DIR, else
// sessionlab-screenshots in the temp dir. It is kept, so a student can open
// the pictures afterwards, and each run overwrites the last one's.
var screenshotDir = sync.OnceValues(func() (string, error) {
	d := cmp.Or(os.Getenv("SCREENSHOT_DIR"), filepath.Join(os.TempDir(), "sessionlab-screenshots"))
	return d, os.MkdirAll(d, 0o755)
})

// screenshot saves the whole page as <name>-desktop.png and <name>-phone.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir, err := screenshotDir()
	if err != nil {
		b.t.Fatalf("screenshot dir: %v", err)
	}
	for _, v := range []viewport{desktop, phone} {
		png := step(b, "screenshot "+name+" at "+v.name, func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
			if _, err := chromedp.EmulateViewport(v.width, v.height)(ctx, t); err != nil {
				return nil, err
			}
			// Let layout settle at the new width before capturing.
			if _, err := chromedp.Evaluate[bool](`new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`,
				chromedp.EvalAwaitPromise)(ctx, t); err != nil {
				return nil, err
			}
			return chromedp.FullScreenshot(100)(ctx, t)
		})
		file := filepath.Join(dir, name+"-"+v.name+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
	b.do("reset viewport", chromedp.EmulateViewport(desktop.width, desktop.height))
	b.t.Logf("screenshots: %s-{desktop,phone}.png in %s", name, dir)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// oneLine squeezes s (a browser's error output) into one line of at most
// max bytes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

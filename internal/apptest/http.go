package apptest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Main is the TestMain of every package that runs the built binary: it builds
// it into *bin, runs the tests, calls each of after, and exits.
func Main(m *testing.M, bin *string, after ...func()) {
	dir, err := os.MkdirTemp("", "sessionlab-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin, err = Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	for _, f := range after {
		f()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// Get fetches a page and returns status and body.
func Get(tb testing.TB, c *http.Client, u string) (int, string) {
	tb.Helper()
	resp, err := c.Get(u)
	if err != nil {
		tb.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// PostForm posts a form and returns the status.
func PostForm(tb testing.TB, c *http.Client, u string, form url.Values) int {
	tb.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		tb.Fatalf("POST %s: %v", u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// WaitUntilOK repeats a GET until it answers 200 (10 s at most).
func WaitUntilOK(tb testing.TB, c *http.Client, u string) (int, string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := Get(tb, c, u)
		if status == http.StatusOK {
			return status, body
		}
		if time.Now().After(deadline) {
			tb.Fatalf("GET %s still %d after 10 s: no recovery", u, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ViewCount is the number a page shows as the session's view count.
func ViewCount(tb testing.TB, body string) string {
	tb.Helper()
	const marker = `data-testid="view-count"`
	i := strings.Index(body, marker)
	if i < 0 {
		tb.Fatalf("no view-count in page:\n%s", body)
	}
	rest := body[i+len(marker):] // other attributes may follow
	rest = rest[strings.Index(rest, ">")+1:]
	return rest[:strings.Index(rest, "<")]
}

// SessionToken is the session cookie the client holds for the app at base.
func SessionToken(tb testing.TB, c *http.Client, base string) string {
	tb.Helper()
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "session" {
			return ck.Value
		}
	}
	tb.Fatalf("no session cookie for %s", base)
	return ""
}

var debugListener = regexp.MustCompile(`msg="debug listener" addr=(\S+)`)

// DebugURL is the base URL of a process's -debug-addr listener.
func (p *Process) DebugURL() string {
	p.tb.Helper()
	m := debugListener.FindStringSubmatch(p.Log())
	if m == nil {
		p.tb.Fatalf("the app logged no debug listener (started without -debug-addr?)\n%s", p.Log())
	}
	return "http://" + m[1]
}

// DebugGet fetches a page of a debug listener.
func DebugGet(tb testing.TB, base, path string) string {
	tb.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

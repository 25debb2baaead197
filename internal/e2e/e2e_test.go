// Package e2e tests the built sessionlab binary as users meet it: real
// processes, a real redis-server, and (in browser_test.go) real Chromium.
//
// Each test starts its own redis-server and app on free ports, so most run
// in parallel (t.Parallel); the browser tests share the package's one
// Chromium (chrome_test.go). Tests that time a failover, a drain or a race
// between processes run alone, before the parallel ones: on a small machine
// a neighbour's load would decide their outcome.
package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// bin is the app binary, built once for all tests in this package.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sessionlab-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err = apptest.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	chromium.stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// get fetches a page and returns status and body.
func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// postForm posts a form and returns the status.
func postForm(t *testing.T, c *http.Client, u string, form url.Values) int {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func viewCount(t *testing.T, body string) string {
	t.Helper()
	const marker = `data-testid="view-count"`
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no view-count in page:\n%s", body)
	}
	rest := body[i+len(marker):] // other attributes may follow
	rest = rest[strings.Index(rest, ">")+1:]
	return rest[:strings.Index(rest, "<")]
}

// sessionToken is the session cookie the client holds for the app at base.
func sessionToken(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "session" {
			return ck.Value
		}
	}
	t.Fatalf("no session cookie for %s", base)
	return ""
}

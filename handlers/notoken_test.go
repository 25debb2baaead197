package handlers

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var pageLinks = regexp.MustCompile(`(?:href|hx-get)="(/[^"]*)"`)

// No page, fragment, header or log line carries a full session token: a
// token shown is a token that can leak (screenshots, shared HTML, logs). The
// test follows every same-site link and hx-get it finds, so pages added
// later are covered too.
func TestNoTokenInAnyPageOrLog(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	anon := ta.anonymousSession(c)
	r := ta.post(c, "/register", url.Values{"username": {"mia"}, "password": {"mia-password"}}, "HX-Request", "true")
	tokens := []string{anon, ta.token(c)}
	fragments := []response{r} // the htmx answer to a login
	ta.post(c, "/logout", nil)
	r = ta.post(c, "/login", url.Values{"username": {"mia"}, "password": {"mia-password"}}, "HX-Request", "true")
	fragments = append(fragments, r)
	token := ta.token(c)
	tokens = append(tokens, token)
	ta.get(c, "/count")

	type fetch struct{ path, hxTarget string }
	queue := []fetch{{"/", ""}, {"/profile", ""}, {"/count", ""}, {"/redis", ""}, {"/redis", "redis-panel"},
		{"/count", "view-count"}, {"/profile", "content"}, {"/sessions", ""}, {"/login", ""}, {"/register", ""}}
	seen := map[fetch]bool{}
	for len(queue) > 0 {
		f := queue[0]
		queue = queue[1:]
		if seen[f] || strings.HasPrefix(f.path, "/static/") || strings.HasPrefix(f.path, "/live") ||
			strings.HasPrefix(f.path, "/debug/") {
			continue
		}
		seen[f] = true
		var headers []string
		if f.hxTarget != "" {
			headers = []string{"HX-Request", "true", "HX-Target", f.hxTarget}
		}
		r := ta.get(c, f.path, headers...)
		if r.status >= 500 {
			t.Errorf("GET %s: %d", f.path, r.status)
		}
		fragments = append(fragments, r)
		for _, m := range pageLinks.FindAllStringSubmatch(r.body, -1) {
			u, err := url.Parse(m[1])
			if err != nil {
				continue
			}
			queue = append(queue, fetch{u.Path, ""}, fetch{u.Path, "content"})
		}
	}
	if len(seen) < 10 {
		t.Fatalf("crawled only %d pages", len(seen))
	}
	if ta.get(c, "/profile").status != http.StatusOK {
		t.Fatal("the crawl logged the client out; it must stay logged in to see everything")
	}
	for _, r := range fragments {
		r.header.Del("Set-Cookie") // the one place a token belongs
		for _, tok := range tokens {
			if strings.Contains(r.body, tok) {
				t.Errorf("a response body contains a full session token:\n%s", r.body)
			}
			for name, vs := range r.header {
				if strings.Contains(strings.Join(vs, " "), tok) {
					t.Errorf("header %s carries a session token", name)
				}
			}
		}
	}
	logs := ta.logs.String()
	for _, tok := range tokens {
		if strings.Contains(logs, tok) {
			t.Errorf("the logs contain a session token")
		}
	}
	t.Logf("checked %d responses, crawled %v", len(fragments), seen)
}

// A Redis error while reading the session key for the panel names the
// session by its log id in the log, never by its key (which is the token).
func TestInspectErrorLogsNoToken(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.register(c, "ned", "ned-password")
	token := ta.token(c)
	ta.redis.MustDo("ACL", "SETUSER", "default", "-memory") // as some managed Redis services do
	if r := ta.get(c, "/redis"); r.status != http.StatusInternalServerError {
		t.Errorf("GET /redis with MEMORY refused: %d, want 500", r.status)
	}
	logs := ta.logs.String()
	if !strings.Contains(logs, "NOPERM") {
		t.Errorf("the failure is not in the log:\n%s", logs)
	}
	if strings.Contains(logs, token) {
		t.Errorf("the log holds the session token:\n%s", logs)
	}
}

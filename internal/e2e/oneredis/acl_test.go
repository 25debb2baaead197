package oneredis

import (
	"html"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
)

// aclRule is the Redis ACL user that docs/deploy.md gives operators,
// read from the doc itself so that what it says is what is tested.
func aclRule(t *testing.T) string {
	t.Helper()
	rule := docACL(t, "user sessionlab ")
	if strings.Contains(rule, "cluster") {
		t.Errorf("the ACL user is granted a CLUSTER command, which the app never sends: %s", rule)
	}
	return rule
}

// docACL is the ACL line of docs/deploy.md that starts with prefix.
func docACL(t *testing.T, prefix string) string {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(doc)) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line)
		}
	}
	t.Fatalf("docs/deploy.md has no line starting with %q", prefix)
	return ""
}

// userArgs is an ACL line as redis-server's command-line arguments.
func userArgs(line string) []string {
	return append([]string{"--user"}, strings.Fields(strings.TrimPrefix(line, "user "))...)
}

// aclDenials reads redis-cli-style ACL LOG output (one value a line) into
// "reason object" pairs: "key browsers:1.2.3.4", "command client|caching".
func aclDenials(log string) []string {
	var out []string
	var reason string
	lines := strings.Split(log, "\n")
	for i := 0; i+1 < len(lines); i++ {
		switch strings.TrimSpace(lines[i]) {
		case "reason":
			reason = strings.TrimSpace(lines[i+1])
		case "object":
			if d := reason + " " + strings.TrimSpace(lines[i+1]); !slices.Contains(out, d) {
				out = append(out, d)
			}
		}
	}
	return out
}

// The app runs as the least-privileged Redis user that docs/deploy.md
// gives: every feature works, Redis refuses nothing it asks (ACL LOG stays
// empty), and the user can do nothing else.
func TestAppRunsAsTheDocumentedACLUser(t *testing.T) {
	t.Parallel()
	const password = "acl-test-password"
	rule := strings.Replace(aclRule(t), ">change-this-password", ">"+password, 1)
	rs := redistest.Start(t, userArgs(rule)...)
	u := "redis://sessionlab:" + password + "@" + rs.Addr() + "/0"
	laptop, phone, newcomer := apptest.Client(t), apptest.Client(t), apptest.Client(t)
	// Trusting the test as a proxy: its X-Request-Id is kept, as nginx's.
	a := apptest.Start(t, bin, "-redis", u, "-instance", "a", "-trusted-proxies", "127.0.0.1/32")
	b := apptest.Start(t, bin, "-redis", u, "-instance", "b", "-trusted-proxies", "127.0.0.1/32")
	proxied := func(app *apptest.Process, id string) int {
		req, _ := http.NewRequest(http.MethodGet, app.URL+"/count", nil)
		req.Header.Set("X-Request-Id", id)
		resp, err := laptop.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	// Each app asked for maxmemory-policy once at start (to warn about
	// eviction), was refused (the user has no CONFIG) and logged that it
	// carries on. From here on Redis must refuse nothing: readiness checks
	// every few seconds would otherwise fill the ACL LOG, Redis's audit log.
	if denials := aclDenials(rs.MustDo("ACL", "LOG")); !slices.Equal(denials, []string{"command config|get"}) {
		t.Errorf("at start: ACL LOG %v, want only the refused CONFIG GET", denials)
	}
	rs.MustDo("ACL", "LOG", "RESET")
	steps := []struct {
		what   string
		do     func() int
		status int
	}{
		{"ready", func() int { s, _ := apptest.Get(t, laptop, a.URL+"/readyz"); return s }, http.StatusOK},
		{"ready again", func() int { s, _ := apptest.Get(t, laptop, a.URL+"/readyz"); return s }, http.StatusOK},
		{"ready on b", func() int { s, _ := apptest.Get(t, laptop, b.URL+"/readyz"); return s }, http.StatusOK},
		{"register", func() int {
			return apptest.PostForm(t, laptop, a.URL+"/register", url.Values{"username": {"acl"}, "password": {"acl-password"}})
		}, http.StatusSeeOther},
		{"count on a", func() int { s, _ := apptest.Get(t, laptop, a.URL+"/count"); return s }, http.StatusOK},
		{"count on b", func() int { s, _ := apptest.Get(t, laptop, b.URL+"/count"); return s }, http.StatusOK},
		// b counted last: the count is replaced in place (SETRANGE), not decoded
		{"count again on b", func() int { s, _ := apptest.Get(t, laptop, b.URL+"/count"); return s }, http.StatusOK},
		{"a count through a proxy (its request id kept: the counted: key)", func() int { return proxied(a, "acl-proxied-1") }, http.StatusOK},
		{"the proxy's retry of it on b", func() int { return proxied(b, "acl-proxied-1") }, http.StatusOK},
		{"login elsewhere", func() int {
			return apptest.PostForm(t, phone, b.URL+"/login", url.Values{"username": {"acl"}, "password": {"acl-password"}})
		}, http.StatusSeeOther},
		{"sessions page", func() int { s, _ := apptest.Get(t, laptop, a.URL+"/sessions"); return s }, http.StatusOK},
		{"Redis page", func() int { s, _ := apptest.Get(t, laptop, a.URL+"/redis"); return s }, http.StatusOK},
		{"stay signed in", func() int { return apptest.PostForm(t, laptop, a.URL+"/session/touch", nil) }, http.StatusSeeOther},
		{"log out everywhere else", func() int { return apptest.PostForm(t, laptop, a.URL+"/sessions/revoke-others", nil) }, http.StatusSeeOther},
		{"the other session is out", func() int { s, _ := apptest.Get(t, phone, b.URL+"/profile"); return s }, http.StatusUnauthorized},
		{"password change", func() int {
			return apptest.PostForm(t, laptop, b.URL+"/password", url.Values{"current": {"acl-password"}, "new": {"acl-new-password"}})
		}, http.StatusSeeOther},
		{"failed login", func() int {
			return apptest.PostForm(t, phone, a.URL+"/login", url.Values{"username": {"acl"}, "password": {"wrong-password"}})
		}, http.StatusUnauthorized},
		// Keys a student changed by hand with redis-cli are repaired with
		// no command beyond the user's.
		{"a count after SET over the address's browsers list", func() int {
			rs.MustDo("SET", "browsers:loopback", "edited")
			s, _ := apptest.Get(t, laptop, a.URL+"/count")
			return s
		}, http.StatusOK},
		{"the lab after SET over the instances hash", func() int {
			rs.MustDo("SET", "instances", "edited")
			s, _ := apptest.Get(t, laptop, b.URL+"/lab")
			return s
		}, http.StatusOK},
		{"a failed login after HSET over the address's failure counter", func() int {
			rs.MustDo("DEL", "login:fail:addr:127.0.0.1")
			rs.MustDo("HSET", "login:fail:addr:127.0.0.1", "edited", "1")
			return apptest.PostForm(t, phone, a.URL+"/login", url.Values{"username": {"acl"}, "password": {"wrong-password"}})
		}, http.StatusUnauthorized},
		{"a login after SET over the bcrypt cost counts", func() int {
			rs.MustDo("SET", "accounts:costs", "edited")
			return apptest.PostForm(t, phone, a.URL+"/login", url.Values{"username": {"acl"}, "password": {"acl-new-password"}})
		}, http.StatusSeeOther},
		{"the Redis page after SET over the user's session list", func() int {
			rs.MustDo("SET", "user:acl:sessions", "edited")
			s, _ := apptest.Get(t, laptop, a.URL+"/redis")
			return s
		}, http.StatusOK},
		{"a count after SET over the user's session list", func() int {
			s, _ := apptest.Get(t, laptop, a.URL+"/count")
			return s
		}, http.StatusOK},
		{"a count after HSET over the session's entry in the list", func() int {
			rs.MustDo("HSET", "user:acl:sessions", sessions.ID(apptest.SessionToken(t, laptop, a.URL)), "edited")
			s, _ := apptest.Get(t, laptop, a.URL+"/count")
			return s
		}, http.StatusOK},
		{"a count through a proxy after HSET over the session's counted: key", func() int {
			key := sessions.CountedKey(apptest.SessionToken(t, laptop, a.URL))
			rs.MustDo("DEL", key)
			rs.MustDo("HSET", key, "edited", "1")
			s := proxied(a, "acl-proxied-2")
			if got := rs.MustDo("GET", key); !strings.HasPrefix(got, "acl-proxied-2 ") {
				t.Errorf("after a count through the proxy, %s holds %q, want the request id and its count", key, got)
			}
			return s
		}, http.StatusOK},
		{"log out everywhere else after SET over the revoked ids", func() int {
			rs.MustDo("SET", "user:acl:revoked", "edited")
			return apptest.PostForm(t, laptop, a.URL+"/sessions/revoke-others", nil)
		}, http.StatusSeeOther},
		{"log out", func() int { return apptest.PostForm(t, laptop, a.URL+"/logout", nil) }, http.StatusSeeOther},
		{"log in", func() int {
			return apptest.PostForm(t, laptop, b.URL+"/login", url.Values{"username": {"acl"}, "password": {"acl-new-password"}})
		}, http.StatusSeeOther},
		// The script that counts a new browser writes its session too.
		{"a new browser's first count on a", func() int { s, _ := apptest.Get(t, newcomer, a.URL+"/count"); return s }, http.StatusOK},
		{"its second count on b says 2", func() int {
			s, body := apptest.Get(t, newcomer, b.URL+"/count")
			if !strings.Contains(body, `data-testid="view-count">2<`) {
				return -1
			}
			return s
		}, http.StatusOK},
	}
	for _, s := range steps {
		if got := s.do(); got != s.status {
			t.Errorf("%s: %d, want %d", s.what, got, s.status)
		}
		if s.what == "register" { // the page's live stream, which subscribes
			if st := apptest.OpenStream(t, laptop, a.URL+"/live"); st.Status != http.StatusOK {
				t.Errorf("live stream: %d, want 200", st.Status)
			}
		}
	}
	if refused := aclDenials(rs.MustDo("ACL", "LOG")); len(refused) > 0 {
		t.Errorf("Redis refused the app %s; if the app needs them, add them to the ACL user in docs/deploy.md",
			strings.Join(refused, ", "))
	}
	// The Redis panel's redis-cli examples work for this user: each one the
	// panel shows, run with this session's key (and the password that
	// --askpass would ask for), answers without NOPERM.
	_, panel := apptest.Get(t, laptop, b.URL+"/redis")
	panel = html.UnescapeString(panel)
	key := "sess:" + apptest.SessionToken(t, laptop, b.URL)
	examples := regexp.MustCompile(`redis-cli [^<]*?(--scan --pattern 'sess:\*'|GET sess:<token>|PTTL sess:<token>)`).FindAllString(panel, -1)
	if len(examples) != 3 || !strings.Contains(panel, "--user sessionlab --askpass GET sess:<token>") {
		t.Errorf("the panel's redis-cli examples: %q, want --scan, GET and PTTL as the app's user", examples)
	}
	for _, example := range examples {
		example = strings.NewReplacer("sess:<token>", key, "'sess:*'", "sess:*").Replace(example)
		args := slices.DeleteFunc(strings.Fields(example)[1:], func(a string) bool { return a == "--askpass" })
		out, err := exec.Command("redis-cli", append([]string{"--pass", password, "--no-auth-warning"}, args...)...).CombinedOutput()
		if err != nil || strings.Contains(string(out), "NOPERM") || strings.Contains(string(out), "ERR") {
			t.Errorf("the panel's %q: %v %q", example, err, out)
		}
	}
	for _, cmd := range [][]string{{"FLUSHALL"}, {"KEYS", "*"}, {"CONFIG", "GET", "*"}, {"GET", "other:key"}} {
		out, _ := exec.Command("redis-cli", append([]string{"-u", u, "--no-auth-warning"}, cmd...)...).CombinedOutput()
		if !strings.Contains(string(out), "NOPERM") {
			t.Errorf("as the app's user, %s answered %q, want NOPERM", strings.Join(cmd, " "), strings.TrimSpace(string(out)))
		}
	}
}

// A Redis set up as docs/deploy.md says (its default user closed, an admin,
// the app's user; the append-only file on) keeps every account and session
// through a restart. Redis 7.0 replays the file's transactions (a script's
// writes, scs/redisstore's MULTI/EXEC) as the default user and checks that
// user's permissions again at EXEC (redis/redis#14541): a default user closed
// with no permissions loses them all at the first restart, and the app says
// "Please log in" as if nothing had been stored.
func TestTheDocumentedACLKeepsDataThroughARedisRestart(t *testing.T) {
	t.Parallel()
	const password, adminPassword = "acl-test-password", "acl-admin-password"
	closed := docACL(t, "user default ")
	if f := strings.Fields(closed); !slices.Contains(f, "off") || slices.Contains(f, "nopass") || slices.ContainsFunc(f, func(s string) bool { return strings.HasPrefix(s, ">") }) {
		t.Errorf("docs/deploy.md's default user %q must be off, with no password: Redis leaves it open to anyone", closed)
	}
	admin := strings.Replace(docACL(t, "user admin "), ">another-long-random-password", ">"+adminPassword, 1)
	app := strings.Replace(aclRule(t), ">change-this-password", ">"+password, 1)
	args := append(append(userArgs(closed), userArgs(admin)...), userArgs(app)...)
	rs := redistest.StartAs(t, "admin", adminPassword, args...)
	if out, _ := exec.Command("redis-cli", "-u", "redis://"+rs.Addr(), "GET", "user:keep").CombinedOutput(); !strings.Contains(string(out), "NOAUTH") {
		t.Errorf("a client that does not log in: GET answered %q, want NOAUTH", strings.TrimSpace(string(out)))
	}
	p := apptest.Start(t, bin, "-redis", "redis://sessionlab:"+password+"@"+rs.Addr()+"/0", "-instance", "a")
	laptop := apptest.Client(t)
	if s := apptest.PostForm(t, laptop, p.URL+"/register", url.Values{"username": {"keep"}, "password": {"keep-password"}}); s != http.StatusSeeOther {
		t.Fatalf("register: %d", s)
	}
	for range 3 {
		if s, _ := apptest.Get(t, laptop, p.URL+"/count"); s != http.StatusOK {
			t.Fatalf("count: %d", s)
		}
	}

	rs.Restart()
	apptest.WaitUntilOK(t, laptop, p.URL+"/readyz")
	if log, _ := os.ReadFile(filepath.Join(rs.Dir(), "redis.log")); strings.Contains(string(log), "NOPERM") {
		t.Errorf("Redis refused what its append-only file holds when it loaded it:\n%s", log)
	}
	// A connection from before the restart may answer one request 503 (EOF):
	// nothing reached the new Redis.
	if _, body := apptest.WaitUntilOK(t, laptop, p.URL+"/profile"); !strings.Contains(body, "Hello keep") {
		t.Errorf("profile after the Redis restart: the login was lost")
	}
	if _, body := apptest.WaitUntilOK(t, laptop, p.URL+"/count"); apptest.ViewCount(t, body) != "4" {
		t.Errorf("count after the Redis restart: %s, want 4 (the session and its count kept)", apptest.ViewCount(t, body))
	}
	login := func() int {
		return apptest.PostForm(t, apptest.Client(t), p.URL+"/login", url.Values{"username": {"keep"}, "password": {"keep-password"}})
	}
	s := login()
	for deadline := time.Now().Add(10 * time.Second); s == http.StatusServiceUnavailable && time.Now().Before(deadline); s = login() {
		time.Sleep(100 * time.Millisecond) // another connection from before the restart: nothing was done
	}
	if s != http.StatusSeeOther {
		t.Errorf("login after the Redis restart: %d, want 303 (the account kept)", s)
	}
}

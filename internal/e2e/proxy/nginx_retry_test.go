package proxy

import (
	"crypto/tls"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// nginx never sends a request that timed out to another instance: GET /count
// changes state, and the first instance may still count it, so a retry
// could count one view twice (nginx's default, proxy_next_upstream error
// timeout, does retry a GET on a timeout). The template runs in real nginx
// over two instances, one of them slow (its Redis is frozen, so it answers
// 503 only after its 1.5 s budget); the read timeout is cut from 75 s to
// 300 ms so that nginx gives up on the slow one first. nginx's access log
// names the instances each request was sent to: never two.
func TestNginxNeverRetriesARequestThatTimedOut(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx is not installed: the template's retry policy was not checked (apt-get install nginx)")
	}
	slowRedis, redis := redistest.Start(t), redistest.Start(t)
	slow := apptest.Start(t, bin, "-redis", slowRedis.URL())
	fast := apptest.Start(t, bin, "-redis", redis.URL())
	slowRedis.Pause()

	shipped := "proxy_read_timeout 75s;"
	https, dir := startNginx(t, func(conf string) string {
		if !strings.Contains(conf, shipped) {
			t.Fatalf("the template no longer says %q; this test shortens it", shipped)
		}
		return strings.Replace(conf, shipped, "proxy_read_timeout 300ms;", 1)
	}, slow.Addr, fast.Addr) // no Redis needed for its /healthz: either instance answers
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

	// Views counted through nginx, each by a new visitor: round-robin sends
	// the first to the slow instance (after its timeout nginx skips it for
	// fail_timeout).
	const views = 4
	statuses := map[int]int{}
	for range views {
		resp, err := c.Get("https://" + https + "/count")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	// nginx logs each request when it is done, naming every instance it
	// was sent to (upstream=).
	var lines []string
	for deadline := time.Now().Add(10 * time.Second); len(lines) < views; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(dir, "logs", "nginx-access.log"))
		lines = slices.DeleteFunc(strings.Split(string(b), "\n"), func(l string) bool { return !strings.Contains(l, `"GET /count `) })
		if time.Now().After(deadline) {
			t.Fatalf("nginx logged %d of the %d counts in 10 s:\n%s", len(lines), views, b)
		}
	}
	toSlow := 0
	for _, l := range lines {
		_, upstreams, _ := strings.Cut(l, " upstream=")
		if strings.Contains(upstreams, slow.Addr) {
			toSlow++
		}
		if strings.Contains(upstreams, ",") {
			t.Errorf("a count was sent to two instances: %s", l)
		}
	}
	t.Logf("answers through nginx %v; %d of %d counts sent to the slow instance", statuses, toSlow, views)
	if toSlow == 0 {
		t.Fatalf("no count reached the slow instance, so nothing was checked:\n%s", strings.Join(lines, "\n"))
	}
	if statuses[http.StatusGatewayTimeout] != toSlow {
		t.Errorf("%d answers 504 for %d counts sent to the slow instance: each should have timed out, not been retried", statuses[http.StatusGatewayTimeout], toSlow)
	}
}

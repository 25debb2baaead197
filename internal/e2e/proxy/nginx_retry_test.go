package proxy

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/tlscert"
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

	dir := t.TempDir()
	for _, d := range []string{"logs", "nginx-tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cert, key, err := tlscert.SelfSigned(dir, "localhost", "sessionlab test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	https := freeAddr(t)
	text, err := os.ReadFile("../../cluster/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	shipped := "proxy_read_timeout 75s;"
	if !bytes.Contains(text, []byte(shipped)) {
		t.Fatalf("the template no longer says %q; this test shortens it", shipped)
	}
	text = bytes.Replace(text, []byte(shipped), []byte("proxy_read_timeout 300ms;"), 1)
	var conf bytes.Buffer
	if err := template.Must(template.New("nginx").Parse(string(text))).Execute(&conf, map[string]any{
		"Dir": dir, "Listen": https, "Cert": cert, "Key": key, "Apps": []string{slow.Addr, fast.Addr},
	}); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	nginx := exec.Command("nginx", "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "logs", "nginx-error.log"), "-g", "daemon off;")
	nginx.SysProcAttr = apptest.StopWithParent()
	if err := nginx.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nginx.Process.Signal(syscall.SIGTERM); _ = nginx.Wait() })

	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := c.Get("https://" + https + "/healthz") // no Redis needed: either instance answers
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer: %v", err)
		}
	}

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

package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/handlers"
	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/throttle"
	"github.com/sessionlab/sessionlab/internal/tlscert"
)

// The nginx site in docs/ is the one docs/deploy.md shows, in front of the
// instances the systemd unit starts, with every proxy directive of the
// template `task cluster` runs (so the two do not drift apart); real nginx
// runs it in front of an instance started as the unit starts it: HTTPS over
// HTTP/2 with one year of HSTS, once; nginx's request id in the answer and in
// its log; plain HTTP only redirects.
func TestNginxSiteForTheUnit(t *testing.T) {
	site, err := os.ReadFile("docs/nginx-sessionlab.conf")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```nginx\n"+string(site)+"```") {
		t.Error("docs/deploy.md does not show docs/nginx-sessionlab.conf as it is (one ```nginx block, byte for byte)")
	}
	tmpl, err := os.ReadFile("internal/cluster/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(tmpl), "\n") {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "{{") {
			continue // the template's own paths
		}
		if (strings.HasPrefix(line, "proxy_") || strings.HasPrefix(line, "keepalive ") || strings.HasPrefix(line, "location ")) &&
			!strings.Contains(string(site), line) {
			t.Errorf("the site lacks the template's %q", line)
		}
	}
	unit, err := os.ReadFile("docs/sessionlab@.service")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "-addr 127.0.0.1:809%i ") {
		t.Fatal("the unit no longer listens on 127.0.0.1:809%i: change the site's upstream with it")
	}
	// The app's cap on connections per address exempts its proxy, so the
	// proxy bounds them, at the app's figure for the default class.
	if want := fmt.Sprintf("limit_conn sessionlab_per_address %d;", handlers.ConnLimitsFor(throttle.DefaultClass, 0, 0).PerAddress); !strings.Contains(string(site), want) {
		t.Errorf("the site lacks %q (docs/security.md, Connections)", want)
	}
	for i := 1; i <= 3; i++ {
		if s := fmt.Sprintf("server 127.0.0.1:809%d max_fails=1 fail_timeout=2s;", i); !strings.Contains(string(site), s) {
			t.Errorf("the site lacks %q (sessionlab@%d)", s, i)
		}
	}

	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx is not installed: the site was not run (apt-get install nginx)")
	}
	rs := redistest.Start(t)
	// As the unit starts an instance (COOKIE_SECURE, TRUSTED_PROXIES).
	appURL, appLog := startRun(t, "-redis", rs.URL(), "-cookie-secure", "-trusted-proxies", "127.0.0.1/32", "-access-log")
	app := strings.TrimPrefix(appURL, "http://")

	dir := t.TempDir()
	for _, d := range []string{"logs", "nginx-tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cert, key, err := tlscert.SelfSigned(dir, "sessionlab.example.com", "sessionlab test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	https, plain := freeAddr(t), freeAddr(t)
	// Only the host's own paths and ports change.
	conf := strings.NewReplacer(
		"listen 80;", "listen "+plain+";", "listen [::]:80;", "",
		"listen 443 ssl http2;", "listen "+https+" ssl http2;", "listen [::]:443 ssl http2;", "",
		"127.0.0.1:8091", app, "127.0.0.1:8092", app, "127.0.0.1:8093", app,
		"/etc/ssl/certs/sessionlab.example.com.pem", cert, "/etc/ssl/private/sessionlab.example.com.key", key,
		"/var/log/nginx/", dir+"/logs/",
	).Replace(string(site))
	sitePath := filepath.Join(dir, "sessionlab.conf")
	if err := os.WriteFile(sitePath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// What Debian's /etc/nginx/nginx.conf is around conf.d: an http block.
	main := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/logs/nginx-error.log warn;
events { worker_connections 64; }
http {
    client_body_temp_path %[1]s/nginx-tmp/body;
    proxy_temp_path %[1]s/nginx-tmp/proxy;
    fastcgi_temp_path %[1]s/nginx-tmp/fastcgi;
    uwsgi_temp_path %[1]s/nginx-tmp/uwsgi;
    scgi_temp_path %[1]s/nginx-tmp/scgi;
    include %[2]s;
}
`, dir, sitePath)
	mainPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(mainPath, []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	errLog := filepath.Join(dir, "logs", "nginx-error.log")
	if out, err := exec.Command("nginx", "-t", "-p", dir, "-c", mainPath, "-e", errLog).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	nginx := exec.Command("nginx", "-p", dir, "-c", mainPath, "-e", errLog, "-g", "daemon off;")
	nginx.SysProcAttr = apptest.StopWithParent()
	if err := nginx.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nginx.Process.Signal(syscall.SIGTERM); _ = nginx.Wait() })

	c := &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	get := func(url string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		req.Host = "sessionlab.example.com"
		return c.Do(req)
	}
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err = get("https://" + https + "/count"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer: %v", err)
		}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("GET /count through the site: %d over %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	if hsts := resp.Header.Values("Strict-Transport-Security"); len(hsts) != 1 || hsts[0] != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security %q, want max-age=31536000 once", hsts)
	}
	if cookie := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(cookie, "__Host-session=") {
		t.Errorf("Set-Cookie %q, want the instance's __Host-session cookie", cookie)
	}
	id := resp.Header.Get("X-Request-Id")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("X-Request-Id %q, want nginx's $request_id (32 hex digits)", id)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(appLog.String(), "request_id="+id); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the instance's log does not name request %s:\n%s", id, appLog.String())
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		access, _ := os.ReadFile(filepath.Join(dir, "logs", "sessionlab-access.log"))
		if strings.Contains(string(access), "request_id="+id) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("nginx's access log does not name request %s:\n%s", id, access)
			break
		}
	}

	resp, err = get("http://" + plain + "/count?from=http")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://sessionlab.example.com/count?from=http"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %d to %q, want 301 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

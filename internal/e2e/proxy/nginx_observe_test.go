package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// The nginx template (internal/cluster/nginx.conf, run by real nginx) sends
// each request's $request_id as X-Request-Id; the app, with nginx in
// -trusted-proxies, keeps it, returns it and logs it, so one id finds a
// request in both logs. Its plain-HTTP server only redirects to HTTPS.
func TestNginxSendsRequestIDAndRedirectsHTTP(t *testing.T) {
	if _, err := exec.LookPath("nginx"); err != nil {
		t.Skip("nginx is not installed: the template's request id and redirect were not checked (apt-get install nginx)")
	}
	rs := redistest.Start(t)
	app := apptest.Start(t, bin, "-redis", rs.URL(), "-trusted-proxies", "127.0.0.1/32", "-access-log")

	n := startNginxWith(t, nginxOptions{apps: []string{app.Addr}, plain: true})
	https, plain, httpsPort, dir := n.https, n.plain, n.httpsPort, n.dir

	c := &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := c.Get("https://" + https + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("through nginx: X-Request-Id %q, want nginx's $request_id (32 hex digits)", id)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(app.Log(), "request_id="+id); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the app's access log does not name request %s:\n%s", id, app.Log())
		}
	}
	// nginx writes its log line once the request is done, which may be
	// after the client has the answer.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		access, _ := os.ReadFile(filepath.Join(dir, "logs", "nginx-access.log"))
		if strings.Contains(string(access), "request_id="+id) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("nginx's access log does not name request %s:\n%s", id, access)
			break
		}
	}

	resp, err = c.Get("http://" + plain + "/count?from=http")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := "https://" + strings.Split(plain, ":")[0] + ":" + httpsPort + "/count?from=http"; resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
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

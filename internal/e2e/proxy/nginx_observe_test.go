package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/tlscert"
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
	https, plain := freeAddr(t), freeAddr(t)
	_, httpsPort, _ := net.SplitHostPort(https)
	text, err := os.ReadFile("../../cluster/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	var conf bytes.Buffer
	if err := template.Must(template.New("nginx").Parse(string(text))).Execute(&conf, map[string]any{
		"Dir": dir, "Listen": https, "Cert": cert, "Key": key, "Apps": []string{app.Addr},
		"HTTPListen": plain, "HTTPSPort": ":" + httpsPort,
	}); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	nginx := exec.Command("nginx", "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "logs", "nginx-error.log"), "-g", "daemon off;")
	nginx.SysProcAttr = apptest.StopWithParent()
	if out, err := exec.Command("nginx", "-t", "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "logs", "nginx-error.log")).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if err := nginx.Start(); err != nil {
		t.Fatal(err)
	}
	// SIGTERM: the master stops its worker and then itself (after a
	// SIGKILL the worker would run on, holding the ports).
	t.Cleanup(func() { _ = nginx.Process.Signal(syscall.SIGTERM); _ = nginx.Wait() })

	c := &http.Client{
		Timeout:       5 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err = c.Get("https://" + https + "/healthz"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer: %v", err)
		}
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

package proxy

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/tlscert"
)

// startNginx runs the cluster's nginx template (internal/cluster/nginx.conf),
// changed by edit if not nil, in real nginx over apps, in that order, and
// returns its HTTPS address once it answers, and its directory (logs/ holds
// its logs).
func startNginx(t *testing.T, edit func(conf string) string, apps ...string) (https, dir string) {
	t.Helper()
	n := startNginxWith(t, nginxOptions{edit: edit, apps: apps})
	return n.https, n.dir
}

// nginxOptions are what startNginxWith puts in the template.
type nginxOptions struct {
	edit  func(conf string) string // changes the template's text, if not nil
	apps  []string
	plain bool // also its plain-HTTP server, which redirects to HTTPS
}

// startedNginx is where a started nginx listens, and its directory.
type startedNginx struct {
	https, plain, httpsPort, dir string
}

// startNginxWith is startNginx with the template's plain-HTTP server too,
// when o.plain; the template is checked with nginx -t first.
func startNginxWith(t *testing.T, o nginxOptions) startedNginx {
	t.Helper()
	var n startedNginx
	dir := t.TempDir()
	n.dir = dir
	for _, d := range []string{"logs", "nginx-tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cert, key, err := tlscert.SelfSigned(dir, "localhost", "sessionlab test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n.https = freeAddr(t)
	_, n.httpsPort, _ = net.SplitHostPort(n.https)
	b, err := os.ReadFile("../../cluster/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if o.edit != nil {
		text = o.edit(text)
	}
	data := map[string]any{"Dir": dir, "Listen": n.https, "Cert": cert, "Key": key, "Apps": o.apps}
	if o.plain {
		n.plain = freeAddr(t)
		data["HTTPListen"], data["HTTPSPort"] = n.plain, ":"+n.httpsPort
	}
	var conf bytes.Buffer
	if err := template.Must(template.New("nginx").Parse(text)).Execute(&conf, data); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	errorLog := filepath.Join(dir, "logs", "nginx-error.log")
	if out, err := exec.Command("nginx", "-t", "-p", dir, "-c", confPath, "-e", errorLog).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	nginx := exec.Command("nginx", "-p", dir, "-c", confPath, "-e", errorLog, "-g", "daemon off;")
	nginx.SysProcAttr = apptest.StopWithParent()
	if err := nginx.Start(); err != nil {
		t.Fatal(err)
	}
	// SIGTERM: the master stops its worker and then itself (after a
	// SIGKILL the worker would run on, holding the ports).
	t.Cleanup(func() {
		_ = nginx.Process.Signal(syscall.SIGTERM)
		_ = nginx.Wait()
		if t.Failed() {
			for _, f := range []string{"nginx-access.log", "nginx-error.log"} {
				b, _ := os.ReadFile(filepath.Join(dir, "logs", f))
				t.Logf("%s:\n%s", f, b)
			}
		}
	})
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := c.Get("https://" + n.https + "/healthz")
		if err == nil {
			resp.Body.Close()
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer: %v", err)
		}
	}
}

package proxy

import (
	"bytes"
	"crypto/tls"
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
	dir = t.TempDir()
	for _, d := range []string{"logs", "nginx-tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cert, key, err := tlscert.SelfSigned(dir, "localhost", "sessionlab test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	https = freeAddr(t)
	b, err := os.ReadFile("../../cluster/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if edit != nil {
		text = edit(text)
	}
	var conf bytes.Buffer
	if err := template.Must(template.New("nginx").Parse(text)).Execute(&conf, map[string]any{
		"Dir": dir, "Listen": https, "Cert": cert, "Key": key, "Apps": apps,
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
		resp, err := c.Get("https://" + https + "/healthz")
		if err == nil {
			resp.Body.Close()
			return https, dir
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not answer: %v", err)
		}
	}
}

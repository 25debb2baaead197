package process

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// `go tool task image` builds the OCI image with podman: a static binary
// FROM scratch (no shell), run as an unprivileged user. Where this machine
// can run containers (podman with runc, STACK.md), the test runs the image
// against a real redis-server and uses it; otherwise it says what it could
// not do.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("image test: skipped with -short")
	}
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed: the image was neither built nor run (apt-get install podman runc)")
	}
	// Rootful podman on a machine with hybrid cgroups needs runc, cgroupfs
	// and no default ulimits (setrlimit fails otherwise).
	conf := filepath.Join(t.TempDir(), "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = \"cgroupfs\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	podman := func(args ...string) (string, error) {
		cmd := exec.Command("podman", append([]string{"--runtime", "runc"}, args...)...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	image := "localhost/sessionlab:test-" + strconv.Itoa(os.Getpid())
	start := time.Now()
	build := exec.Command("go", "tool", "task", "image", "IMAGE="+image)
	build.Dir = "../../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go tool task image: %v\n%s", err, out)
	}
	t.Logf("go tool task image: %v", time.Since(start).Round(time.Second))
	t.Cleanup(func() { _, _ = podman("rmi", "-f", image) })

	if user, err := podman("image", "inspect", "--format", "{{.Config.User}}", image); err != nil || user != "65532:65532" {
		t.Errorf("image user %q (%v), want the unprivileged 65532:65532", user, err)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("the image is built, but runc is missing, so it was not run (apt-get install runc)")
	}
	if out, err := podman("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image, "-c", "true"); err == nil {
		t.Errorf("the image has a shell (FROM scratch has none): %s", out)
	} else if strings.Contains(out, "setrlimit") || strings.Contains(out, "cgroup") {
		t.Skipf("the image is built, but this machine cannot run containers: %s", out)
	}

	rs := redistest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	name := "sessionlab-test-" + strconv.Itoa(os.Getpid())
	if out, err := podman("run", "-d", "--rm", "--network", "host", "--name", name, image,
		"-addr", addr, "-redis", rs.URL()); err != nil {
		t.Fatalf("podman run: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = podman("rm", "-f", name) })
	base := "http://" + addr
	c := apptest.Client(t)
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := c.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			logs, _ := podman("logs", name)
			t.Fatalf("the container did not answer within 20 s:\n%s", logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := apptest.PostForm(t, c, base+"/register", url.Values{"username": {"boxed"}, "password": {"container-password"}}); s != http.StatusSeeOther {
		t.Fatalf("register in the container: %d", s)
	}
	if s, body := apptest.Get(t, c, base+"/count"); s != http.StatusOK || apptest.ViewCount(t, body) != "1" {
		t.Errorf("count in the container: %d", s)
	}
	if key := "sess:" + apptest.SessionToken(t, c, base); rs.MustDo("EXISTS", key) != "1" {
		t.Errorf("the session is not in Redis (%s)", key)
	}
	if top, err := podman("top", name, "user"); err != nil || strings.Contains(top, "root") || !strings.Contains(top, "65532") {
		t.Errorf("the process in the container runs as %q (%v), want 65532", top, err)
	}
}

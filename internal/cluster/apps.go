package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// appService is one instance of the app, asking the sentinels for the master.
func (c *cluster) appService(name, addr, bin string, extra []string) *service {
	args := append([]string{"-addr", addr, "-instance", name, "-redis", c.redisURL(),
		"-cookie-secure", "-trusted-proxies", "127.0.0.1/32,::1/128"}, extra...)
	return &service{
		name:  name,
		start: func(bool) (*proc, error) { return c.startProc(name, bin, args...) },
		ready: func() bool { return healthy(addr) },
		// nginx is gone already, so nothing to drain for: SIGINT skips the
		// drain and still finishes the requests in flight.
		sig:  syscall.SIGINT,
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
}

func healthy(addr string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// nginxService writes nginx.conf from the template and runs nginx on it.
func (c *cluster) nginxService(p Ports, cert, key string, apps []string) (*service, error) {
	listen := addr(p.HTTPS)
	var b strings.Builder
	err := template.Must(template.New("nginx").Parse(nginxConf)).Execute(&b, map[string]any{
		"Dir": c.dir, "Listen": listen, "Cert": cert, "Key": key, "Apps": apps,
		"HTTPListen": addr(p.HTTP), "HTTPSPort": ":" + strconv.Itoa(p.HTTPS),
	})
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(c.dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(cert)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	return &service{
		name: "nginx",
		start: func(bool) (*proc, error) {
			// SIGTERM, not SIGKILL, if the cluster dies: a SIGKILL would
			// leave the workers running, holding the ports.
			return c.startProcDying(syscall.SIGTERM, "nginx", "nginx", "-p", c.dir, "-c", conf, "-e", filepath.Join(c.dir, "logs", "nginx-error.log"), "-g", "daemon off;")
		},
		// A TLS handshake with this certificate proves it is this nginx, workers up.
		ready: func() bool {
			d := &net.Dialer{Timeout: time.Second}
			conn, err := tls.DialWithDialer(d, "tcp", listen, &tls.Config{RootCAs: roots, ServerName: "localhost"})
			if err == nil {
				conn.Close()
			}
			return err == nil
		},
		sig:  syscall.SIGQUIT, // graceful for nginx
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}, nil
}

// restartApps restarts the named instances, or every one, one at a time: the
// next drains only when nginx has the last back in rotation, so none fails.
func restartApps(dir string, names []string, out io.Writer) error {
	s, err := readState(dir)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		names = slices.Sorted(maps.Keys(s.Apps))
	}
	for i, name := range names {
		if i > 0 {
			// nginx skips an instance that refused a connection for up to
			// fail_timeout + 1 s; stopping the next sooner would leave two out.
			time.Sleep(nginxFailTimeout + time.Second)
		}
		if err := restartApp(dir, s, name, out); err != nil {
			return err
		}
	}
	return nil
}

// nginxFailTimeout is fail_timeout in nginx.conf's upstream.
const nginxFailTimeout = 2 * time.Second

func restartApp(dir string, s State, name string, out io.Writer) error {
	a, ok := s.Apps[name]
	if !ok {
		return fmt.Errorf("no instance %q (%s)", name, strings.Join(slices.Sorted(maps.Keys(s.Apps)), ", "))
	}
	if err := syscall.Kill(a.PID, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stop %s (pid %d): %w", name, a.PID, err)
	}
	// The drain (5 s by default), the requests in flight, the new start.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if s, err := readState(dir); err == nil && s.Apps[name].PID != a.PID && healthy(a.Addr) {
			fmt.Fprintf(out, "%s restarted (pid %d, was %d)\n", name, s.Apps[name].PID, a.PID)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come back within 60 s; see %s", name, filepath.Join(dir, "logs", name+".log"))
}

package redisconn_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// rediss:// with a private CA and a client certificate (Redis's default
// tls-auth-clients yes), on a real redis-server with certificates made now.
func TestConnectOverTLSWithPrivateCAAndClientCertificate(t *testing.T) {
	certs := redistest.NewCerts(t)
	rs := redistest.StartTLS(t, certs)
	url := "rediss://" + rs.TLSAddr() + "/0"

	t.Run("with the CA and a client certificate, sessions and commands work", func(t *testing.T) {
		cfg := redisconn.Config{URL: url, CA: certs.CA, Cert: certs.ClientCert, Key: certs.ClientKey}
		rdb, err := redisconn.Connect(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer rdb.Close()
		store, _ := newStore(t, cfg, rdb) // the session pool dials with the same files
		if err := store.CommitCtx(context.Background(), "tok", []byte("v"), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if got := rs.MustDo("GET", "sess:tok"); got != "v" {
			t.Errorf("the session over TLS reads %q on the server", got)
		}
	})
	for _, tc := range []struct {
		name string
		cfg  redisconn.Config
		says string
	}{
		{"without the CA, the certificate is not trusted", redisconn.Config{URL: url, Cert: certs.ClientCert, Key: certs.ClientKey}, "-redis-ca"},
		{"without a client certificate, Redis wants one", redisconn.Config{URL: url, CA: certs.CA}, "-redis-cert"},
		{"TLS files with a plain redis:// URL", redisconn.Config{URL: "redis://" + rs.TLSAddr(), CA: certs.CA}, "rediss://"},
		{"a certificate without its key", redisconn.Config{URL: url, CA: certs.CA, Cert: certs.ClientCert}, "go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := redisconn.Connect(t.Context(), tc.cfg)
			// A handshake that a loaded machine makes late says nothing about
			// which message a refusal gets: ask again, a few times at most.
			for try := 1; try < 4 && err != nil && strings.Contains(err.Error(), "did not answer in time"); try++ {
				_, err = redisconn.Connect(t.Context(), tc.cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tc.says) || strings.Contains(err.Error(), "task run") {
				t.Errorf("error %v; want one naming %q, and no hint to start a Redis", err, tc.says)
			}
		})
	}
}

// The start-up error names the real cause, and gives the hint to start a
// Redis only when nothing listens.
func TestConnectErrorNamesTheCause(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := l.Addr().String()
	l.Close()
	withPassword := redistest.Start(t)
	withPassword.MustDo("CONFIG", "SET", "requirepass", "s3cret")
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", "1")
	cluster := redistest.Start(t, "--cluster-enabled", "yes")
	for _, tc := range []struct {
		name, url, says string
		hint            bool
	}{
		{"nothing listens", "redis://" + nobody + "/0", "connection refused", true},
		{"no password", "redis://" + withPassword.Addr() + "/0", "credentials", false},
		{"a wrong password", "redis://:wrong@" + withPassword.Addr() + "/0", "credentials", false},
		{"a replica", replica.URL(), "not a master", false},
		{"a Cluster node", cluster.URL(), "Cluster", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := redisconn.Connect(t.Context(), redisconn.Config{URL: tc.url})
			if err == nil {
				t.Fatal("connected")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.says) || strings.Contains(msg, "task run") != tc.hint || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming %q, the `task run` hint %v", msg, tc.says, tc.hint)
			}
			if strings.Contains(msg, "wrong") || strings.Contains(msg, "s3cret") {
				t.Errorf("error %q shows the password", msg)
			}
		})
	}
}

// URL options the app would silently override or not honour are refused.
func TestConnectRefusesURLOptionsItCannotHonour(t *testing.T) {
	rs := redistest.Start(t)
	for _, opt := range []string{"protocol=2", "client_cache=0", "dial_timeout=10s", "write_timeout=10s", "max_retries=0", "dbb=1"} {
		_, err := redisconn.Connect(t.Context(), redisconn.Config{URL: rs.URL() + "?" + opt})
		name, _, _ := strings.Cut(opt, "=")
		if err == nil || !strings.Contains(err.Error(), `"`+name+`" is not supported`) {
			t.Errorf("?%s: %v, want it refused by name", opt, err)
		}
	}
	_, err := redisconn.Connect(t.Context(), redisconn.Config{URL: rs.URL() + "?addr=" + rs.Addr()})
	if err == nil || !strings.Contains(err.Error(), "master_set") {
		t.Errorf("two addresses without master_set: %v, want refused", err)
	}
	if _, err := redisconn.Connect(t.Context(), redisconn.Config{URL: rs.URL() + "?db=2&client_name=app"}); err != nil {
		t.Errorf("db and client_name: %v", err)
	}
}

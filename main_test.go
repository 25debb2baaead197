package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Slow clients cannot hold connections open: every server timeout is set.
func TestServerTimeoutsAreSet(t *testing.T) {
	srv := newServer(http.NotFoundHandler(), slog.New(slog.DiscardHandler))
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout,
		"ReadTimeout":       srv.ReadTimeout,
		"WriteTimeout":      srv.WriteTimeout,
		"IdleTimeout":       srv.IdleTimeout,
	} {
		if d <= 0 || d > 5*time.Minute {
			t.Errorf("%s = %v, want set (and at most minutes)", name, d)
		}
	}
	if srv.ReadHeaderTimeout > srv.ReadTimeout {
		t.Errorf("ReadHeaderTimeout %v is longer than ReadTimeout %v", srv.ReadHeaderTimeout, srv.ReadTimeout)
	}
	if srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20 {
		t.Errorf("MaxHeaderBytes = %d", srv.MaxHeaderBytes)
	}
}

func TestSecurityConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	t.Run("defaults: 30 min idle, 24 h absolute, plain cookie, no trusted proxies", func(t *testing.T) {
		c, err := parseConfig([]string{"sessionlab"}, env(), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.idle != 30*time.Minute || c.lifetime != 24*time.Hour || c.cookieSecure || len(c.trustedProxies) != 0 {
			t.Errorf("got idle %v, lifetime %v, secure %v, proxies %v", c.idle, c.lifetime, c.cookieSecure, c.trustedProxies)
		}
	})
	t.Run("from the environment", func(t *testing.T) {
		c, err := parseConfig([]string{"sessionlab"}, env("SESSION_IDLE", "5m", "SESSION_LIFETIME", "2h",
			"COOKIE_SECURE", "true", "TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1"), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.idle != 5*time.Minute || c.lifetime != 2*time.Hour || !c.cookieSecure || len(c.trustedProxies) != 2 {
			t.Errorf("got idle %v, lifetime %v, secure %v, proxies %v", c.idle, c.lifetime, c.cookieSecure, c.trustedProxies)
		}
	})
	t.Run("flags win over the environment", func(t *testing.T) {
		c, err := parseConfig([]string{"sessionlab", "-idle", "1m", "-trusted-proxies", "", "-cookie-secure=false"},
			env("SESSION_IDLE", "5m", "TRUSTED_PROXIES", "10.0.0.0/8", "COOKIE_SECURE", "1"), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.idle != time.Minute || c.cookieSecure || len(c.trustedProxies) != 0 {
			t.Errorf("got idle %v, secure %v, proxies %v", c.idle, c.cookieSecure, c.trustedProxies)
		}
	})
	for _, args := range [][]string{
		{"-trusted-proxies", "not-a-network"},
		{"-lifetime", "0s"},
		{"-idle", "-1m"},
	} {
		t.Run("refuses "+strings.Join(args, " "), func(t *testing.T) {
			if _, err := parseConfig(append([]string{"sessionlab"}, args...), env(), io.Discard); err == nil {
				t.Error("accepted")
			}
		})
	}
}

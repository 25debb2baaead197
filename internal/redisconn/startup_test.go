package redisconn_test

import (
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// Each way to point the app at the wrong kind of Redis gets one line that
// names the mistake and the fix, not the driver's words for a symptom.
func TestStartupErrorsNameTheMistake(t *testing.T) {
	plain := redistest.Start(t)
	certs := redistest.NewCerts(t)
	tlsOnly := redistest.StartTLS(t, certs)
	topo := redistest.StartTopology(t)
	sentinel := topo.Sentinels[0].Addr()
	for _, tc := range []struct {
		name string
		cfg  redisconn.Config
		says []string // every one must be in the line
	}{
		{"master_set against a plain Redis", redisconn.Config{URL: plain.URL() + "?master_set=x"},
			[]string{"not a Sentinel", "master_set"}},
		{"a Sentinel without master_set", redisconn.Config{URL: "redis://" + sentinel + "/0"},
			[]string{"is a Sentinel", "?master_set="}},
		{"rediss:// to a plain port", redisconn.Config{URL: "rediss://" + plain.Addr() + "/0", CA: certs.CA},
			[]string{"does not speak TLS", "redis://"}},
		{"redis:// to a TLS port", redisconn.Config{URL: "redis://" + tlsOnly.TLSAddr() + "/0"},
			[]string{"speaks TLS", "rediss://"}},
		{"an empty master_set", redisconn.Config{URL: plain.URL() + "?master_set="},
			[]string{"master_set", "empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb, err := redisconn.Connect(t.Context(), tc.cfg)
			if err == nil {
				rdb.Close()
				t.Fatal("connected")
			}
			msg := err.Error()
			for _, s := range tc.says {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q: want it to say %q", msg, s)
				}
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "task run") || strings.Contains(msg, "is a replica") {
				t.Errorf("error %q: want one line, no hint to start a Redis, no replica", msg)
			}
		})
	}
}

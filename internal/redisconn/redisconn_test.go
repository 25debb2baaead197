package redisconn_test

import (
	"testing"

	"github.com/sessionlab/sessionlab/internal/redisconn"
)

// A Redis URL is logged without its password, and one that does not parse
// is not logged at all (it may be a password typed in the wrong place).
func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"redis://localhost:6379/0":             "redis://localhost:6379/0",
		"redis://:s3cret@localhost:6379/0":     "redis://:xxxxx@localhost:6379/0",
		"rediss://u:s3cret@example.com:6380/2": "rediss://u:xxxxx@example.com:6380/2",
		"redis://:s3cret@localhost:63x9/0":     "(one that does not parse)",
	} {
		if got := redisconn.Redact(in); got != want {
			t.Errorf("redisconn.Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

package redisconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// ProbeKey is the key /readyz writes to prove Redis takes writes. It
// expires by itself.
const ProbeKey = "ready:probe"

// Health is what Probe learned besides "Redis takes writes".
type Health struct {
	// Policy is Redis's maxmemory-policy, "" when Redis would not say
	// (CONFIG may be renamed or forbidden on a managed Redis).
	Policy string
}

// Warning is what an operator should fix although Redis serves, or "".
func (h Health) Warning() string {
	if h.Policy == "" {
		return ""
	}
	return PolicyWarning(h.Policy)
}

// Probe checks that Redis can serve this app: that it is a master (after a
// failover, the old one is a replica), that it takes writes (a PING answers
// while every write fails with OOM, READONLY or MISCONF), and reads the
// maxmemory-policy, in one round trip.
func Probe(ctx context.Context, c rueidis.Client) (Health, error) {
	res := c.DoMulti(ctx,
		c.B().Role().Build(),
		c.B().Set().Key(ProbeKey).Value("1").Px(10*time.Second).Build(),
		c.B().ConfigGet().Parameter("maxmemory-policy").Build())
	role, err := res[0].ToArray()
	if err != nil {
		return Health{}, fmt.Errorf("ROLE: %w", err)
	}
	if len(role) == 0 {
		return Health{}, errors.New("ROLE: empty reply")
	}
	if r, _ := role[0].ToString(); r != "master" {
		return Health{}, fmt.Errorf("ROLE: %w", errNotMaster)
	}
	if err := res[1].Error(); err != nil {
		return Health{}, fmt.Errorf("write %s: %w", ProbeKey, err)
	}
	policy, _ := policyOf(res[2])
	return Health{Policy: policy}, nil
}

// MemoryPolicy reads Redis's maxmemory-policy.
func MemoryPolicy(ctx context.Context, c rueidis.Client) (string, error) {
	return policyOf(c.Do(ctx, c.B().ConfigGet().Parameter("maxmemory-policy").Build()))
}

func policyOf(res rueidis.RedisResult) (string, error) {
	m, err := res.AsStrMap()
	if err != nil {
		return "", fmt.Errorf("CONFIG GET maxmemory-policy: %w", err)
	}
	return m["maxmemory-policy"], nil
}

// PolicyWarning says what a maxmemory-policy other than noeviction costs
// this app, or "" for noeviction. With noeviction, Redis at its memory
// limit refuses writes (a 503, nothing lost); with any other policy it
// makes room by deleting keys the app cannot do without.
func PolicyWarning(policy string) string {
	switch {
	case policy == "noeviction":
		return ""
	case strings.HasPrefix(policy, "allkeys-"):
		return fmt.Sprintf("Redis's maxmemory-policy is %s: at its memory limit Redis deletes any key, accounts and session lists included; set maxmemory-policy noeviction", policy)
	case strings.HasPrefix(policy, "volatile-"):
		return fmt.Sprintf("Redis's maxmemory-policy is %s: at its memory limit Redis deletes keys that expire, sessions, session lists and login throttles included; set maxmemory-policy noeviction", policy)
	}
	return fmt.Sprintf("Redis's maxmemory-policy is %s, not noeviction: at its memory limit Redis may delete keys the app needs; set maxmemory-policy noeviction", policy)
}

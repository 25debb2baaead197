package redisconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// ProbeKey is the key /readyz writes to prove Redis takes writes.
const ProbeKey = "ready:probe"

// Health is what Probe learned besides "Redis takes writes".
type Health struct {
	Policy string // Redis's maxmemory-policy; "" when Redis would not say
}

// Warning is what an operator should fix although Redis serves, or "".
func (h Health) Warning() string {
	if h.Policy == "" {
		return ""
	}
	return PolicyWarning(h.Policy)
}

// Prober answers readiness checks. Once Redis refuses CONFIG it stops asking:
// each refusal is an ACL LOG entry, and checks every few seconds would fill it.
type Prober struct {
	c rueidis.Client
	// noRole: the managed-Redis mode, where ROLE may be forbidden too.
	noRole   bool
	noConfig atomic.Bool
}

// NewProber probes through c; managed: send neither ROLE nor CONFIG.
func NewProber(c rueidis.Client, managed bool) *Prober {
	p := &Prober{c: c, noRole: managed}
	p.noConfig.Store(managed)
	return p
}

// Probe checks in one round trip that Redis is a master and takes writes (a
// PING answers while writes fail with OOM or MISCONF), and reads its policy.
func (p *Prober) Probe(ctx context.Context) (Health, error) {
	c := p.c
	cmds := make(rueidis.Commands, 0, 3)
	cmds = append(cmds, c.B().Set().Key(ProbeKey).Value("1").Px(10*time.Second).Build())
	if !p.noRole {
		cmds = append(cmds, c.B().Role().Build())
	}
	askConfig := !p.noConfig.Load()
	if askConfig {
		cmds = append(cmds, c.B().ConfigGet().Parameter("maxmemory-policy").Build())
	}
	res := c.DoMulti(ctx, cmds...)
	if !p.noRole {
		role, err := res[1].ToArray()
		if err != nil {
			return Health{}, fmt.Errorf("ROLE: %w", err)
		}
		if len(role) == 0 {
			return Health{}, errors.New("ROLE: empty reply")
		}
		if r, _ := role[0].ToString(); r != "master" {
			return Health{}, fmt.Errorf("ROLE: %w", errNotMaster)
		}
	}
	if err := res[0].Error(); err != nil {
		return Health{}, fmt.Errorf("write %s: %w", ProbeKey, err)
	}
	if !askConfig {
		return Health{}, nil
	}
	policy, _ := p.policyOf(res[len(res)-1])
	return Health{Policy: policy}, nil
}

// MemoryPolicy reads Redis's maxmemory-policy.
func (p *Prober) MemoryPolicy(ctx context.Context) (string, error) {
	if p.noConfig.Load() {
		return "", errConfigRefused
	}
	return p.policyOf(p.c.Do(ctx, p.c.B().ConfigGet().Parameter("maxmemory-policy").Build()))
}

// errConfigRefused: Redis refused CONFIG GET before, or it is not to be sent.
var errConfigRefused = errors.New("CONFIG GET maxmemory-policy: refused by Redis (ACL or managed Redis), not asked again")

func (p *Prober) policyOf(res rueidis.RedisResult) (string, error) {
	m, err := res.AsStrMap()
	if err != nil {
		if _, redisErr := rueidis.IsRedisErr(err); redisErr {
			if _, outage := Unavailable(err); outage {
				return "", fmt.Errorf("CONFIG GET maxmemory-policy: %w", err)
			}
			// NOPERM or an unknown command will not change: stop asking.
			p.noConfig.Store(true)
		}
		return "", fmt.Errorf("CONFIG GET maxmemory-policy: %w", err)
	}
	return m["maxmemory-policy"], nil
}

// PolicyWarning says what a maxmemory-policy other than noeviction costs: it
// makes room by deleting keys the app needs, where noeviction refuses writes.
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

package handlers

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
)

// -redis-managed: no client-side caching, so a logged-in request reads its
// account from Redis (one round trip more) instead of from the local copy
// Redis keeps fresh; and none of the commands a managed Redis may forbid.
// The test measures both and says what the mode costs.
func TestManagedRedisCostsOneRoundTripPerLoggedInRequest(t *testing.T) {
	cached := newTestApp(t)
	managed := newTestAppWith(t, cached.redis, func(c *Config) { c.Redis.Managed = true })
	trips := map[string]int{}
	for name, ta := range map[string]*testApp{"cached": cached, "managed": managed} {
		c := ta.client()
		ta.register(c, "m-"+name, "managed-password")
		ta.get(c, "/profile") // the account is read (and, with caching, kept) once
		var r response
		n, cmds := roundTrips(t, ta.redis, func() { r = ta.get(c, "/profile") })
		_, probe := roundTrips(t, ta.redis, func() {
			if r := ta.get(ta.client(), "/readyz"); r.status != http.StatusOK {
				t.Errorf("%s: readyz %d %q", name, r.status, r.body)
			}
		})
		cmds = append(cmds, probe...)
		if r.status != http.StatusOK {
			t.Fatalf("%s: profile %d", name, r.status)
		}
		trips[name] = n
		for _, forbidden := range []string{"CLIENT", "ROLE", "CONFIG", "INFO"} {
			if name == "managed" && slices.Contains(cmds, forbidden) {
				t.Errorf("managed: sent %s (%v)", forbidden, cmds)
			}
		}
		t.Logf("%s: GET /profile (logged in): %d round trips; with GET /readyz: %v", name, n, cmds)
	}
	if trips["managed"] != trips["cached"]+1 {
		t.Errorf("round trips: cached %d, managed %d; want the managed mode to cost exactly the account read",
			trips["cached"], trips["managed"])
	}
}

// BenchmarkLoggedInProfile is what -redis-managed costs a logged-in page
// in time: the account read that client-side caching saves.
func BenchmarkLoggedInProfile(b *testing.B) {
	cached := newTestApp(b)
	managed := newTestAppWith(b, cached.redis, func(c *Config) { c.Redis.Managed = true })
	runs := 0
	for _, mode := range []struct {
		name string
		ta   *testApp
	}{{"cached", cached}, {"managed", managed}} {
		b.Run(mode.name, func(b *testing.B) {
			ta := mode.ta
			c := ta.client()
			runs++
			ta.register(c, fmt.Sprintf("bench-%s-%d", mode.name, runs), "managed-password")
			for b.Loop() {
				if r := ta.get(c, "/profile"); r.status != http.StatusOK {
					b.Fatalf("profile: %d", r.status)
				}
			}
		})
	}
}

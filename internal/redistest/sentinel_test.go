package redistest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// The topology fails over both ways a test needs: on an operator's request,
// and when the master dies; the data written before is on the new master.
func TestTopologyFailsOver(t *testing.T) {
	topo := redistest.StartTopology(t)
	if !strings.Contains(topo.URL(), "master_set="+redistest.MasterSet) {
		t.Fatalf("URL %s has no master_set", topo.URL())
	}
	topo.Master().MustDo("SET", "k", "v")
	topo.Master().MustDo("WAIT", "1", "1000")

	for _, tc := range []struct {
		name string
		fail func() (string, string)
	}{
		{"kill -9 of the master promotes the replica", topo.KillMaster},
		{"SENTINEL FAILOVER promotes the replica", topo.Failover},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			from, to := tc.fail()
			t.Logf("%s -> %s in %v", from, to, time.Since(start).Round(time.Millisecond))
			if from == to {
				t.Fatalf("the master is still %s", from)
			}
			m := topo.Master()
			if m.Addr() != to {
				t.Fatalf("Master() = %s, want %s", m.Addr(), to)
			}
			if role := m.MustDo("ROLE"); !strings.HasPrefix(role, "master") {
				t.Errorf("new master's ROLE = %q", role)
			}
			if v := m.MustDo("GET", "k"); v != "v" {
				t.Errorf("GET k on the new master = %q, want v", v)
			}
			// The killed master comes back as a replica of the new one, so
			// that the next failover has a replica to promote.
			for _, n := range topo.Nodes {
				if n.Addr() == from && n.Dead() {
					topo.Rejoin(n)
					t.Logf("and %s has rejoined after %v", from, time.Since(start).Round(time.Millisecond))
				}
			}
		})
	}
}

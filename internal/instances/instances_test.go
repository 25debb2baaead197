package instances_test

import (
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/instances"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

func client(t *testing.T, rs *redistest.Server) rueidis.Client {
	t.Helper()
	rdb, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	return rdb
}

func names(t *testing.T, r *instances.Roster) []string {
	t.Helper()
	live, err := r.Live(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, in := range live {
		out = append(out, in.Name+"/"+in.Process)
	}
	return out
}

// Instances on one Redis see each other while they announce; one that
// stops is gone at once, one that stopped announcing (killed) after the
// window; a restart under the same name replaces its process.
func TestInstancesOnOneRedisSeeEachOther(t *testing.T) {
	rs := redistest.Start(t)
	rdb := client(t, rs)
	a := instances.New(rdb, "a", "aaa111")
	if got := names(t, a); len(got) != 0 {
		t.Fatalf("before any announce: %v", got)
	}
	stopA := a.Run(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if got := names(t, a); !slices.Equal(got, []string{"a/aaa111"}) {
		t.Fatalf("a alone: %v", got)
	}
	b := instances.New(rdb, "b", "bbb222")
	stopB := b.Run(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if got := names(t, a); !slices.Equal(got, []string{"a/aaa111", "b/bbb222"}) {
		t.Errorf("a beside b, as a sees it: %v", got)
	}
	if got := names(t, b); !slices.Equal(got, []string{"b/bbb222", "a/aaa111"}) {
		t.Errorf("as b sees it (itself first): %v", got)
	}
	stopB()
	if got := names(t, a); !slices.Equal(got, []string{"a/aaa111"}) {
		t.Errorf("after b stopped: %v", got)
	}

	// An instance killed mid-way leaves its last announce behind, older
	// than the window as time passes: it is not counted, and the next
	// announce drops it.
	old := time.Now().Add(-instances.Window - time.Second).UnixMilli()
	rs.MustDo("HSET", instances.Key, "c", `{"process":"ccc333","at":`+strconv.FormatInt(old, 10)+`}`)
	if got := names(t, a); !slices.Equal(got, []string{"a/aaa111"}) {
		t.Errorf("with a stale announce of c: %v", got)
	}
	if _, err := a.Announce(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rs.MustDo("HEXISTS", instances.Key, "c") != "0" {
		t.Error("an announce kept a stale instance")
	}

	// a restarts: the new process takes the name; the old one's leave,
	// late, does not remove it.
	a2 := instances.New(rdb, "a", "aaa999")
	if _, err := a2.Announce(t.Context()); err != nil {
		t.Fatal(err)
	}
	stopA()
	if got := names(t, a2); !slices.Equal(got, []string{"a/aaa999"}) {
		t.Errorf("after a restart: %v", got)
	}
}

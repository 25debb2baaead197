package redisconn_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// roleCalls is how many ROLE commands rs has served.
func roleCalls(t *testing.T, rs *redistest.Server) int {
	t.Helper()
	m := regexp.MustCompile(`cmdstat_role:calls=(\d+)`).FindStringSubmatch(rs.MustDo("INFO", "commandstats"))
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// A pool connection is lent without a round trip for RoleEvery after its
// last ROLE check, then checked again: a master that a failover demoted
// without breaking a connection (no I/O error, no write refused) stops
// serving session reads within RoleEvery.
func TestPoolChecksRoleEveryFewSeconds(t *testing.T) {
	master := redistest.Start(t)
	rs := redistest.Start(t)
	store, _ := newStore(t, redisconn.Config{URL: rs.URL()}, connect(t, rs.URL()))
	ctx := context.Background()
	if err := store.CommitCtx(ctx, "tok", []byte("v"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	checked := time.Now() // the commit's connection was checked when dialled
	calls := roleCalls(t, rs)
	if _, found, err := store.FindCtx(ctx, "tok"); err != nil || !found {
		t.Fatalf("find: %v, found %v", err, found)
	}
	if time.Since(checked) < redisconn.RoleEvery && roleCalls(t, rs) != calls {
		t.Errorf("a connection checked %v ago was checked again", time.Since(checked))
	}

	// A failover demotes rs; the session is in its copy too (synced from
	// the master), so only the ROLE check keeps reads off it.
	master.MustDo("SET", "sess:tok", "v")
	rs.MustDo("REPLICAOF", "127.0.0.1", strings.TrimPrefix(master.Addr(), "127.0.0.1:"))
	time.Sleep(time.Until(checked.Add(redisconn.RoleEvery + 100*time.Millisecond)))
	calls = roleCalls(t, rs)
	_, _, err := store.FindCtx(ctx, "tok")
	if kind, _ := redisconn.Unavailable(err); kind != redisconn.NotMaster {
		t.Errorf("find %v after the last check, on a demoted master: %v, classified %q; want %q",
			redisconn.RoleEvery, err, kind, redisconn.NotMaster)
	}
	if roleCalls(t, rs) == calls {
		t.Error("no ROLE was sent before lending the connection again")
	}
}

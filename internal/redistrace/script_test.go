package redistrace

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// A script that fails halfway has still run its first commands (Redis
// keeps their writes and MONITOR prints them): the trace lists them, the
// reply shows the error, and the caller gets the error.
func TestAFailedScriptReportsWhatItRan(t *testing.T) {
	srv := redistest.Start(t)
	rdb := Client(srv.Client(t), false)
	ctx, tr := Start(context.Background())
	if _, err := srv.Do("HSET", "not-a-string", "f", "v"); err != nil {
		t.Fatal(err)
	}
	failing := NewScript("fails halfway", `
redis.call('SET', KEYS[1], 'written')
return redis.call('GET', KEYS[2])`)
	err := failing.Exec(ctx, rdb, []string{"a-string", "not-a-string"}, nil).Error()
	if err == nil || !strings.HasPrefix(err.Error(), "WRONGTYPE") {
		t.Fatalf("Exec: %v, want the WRONGTYPE of the GET inside", err)
	}
	if v, _ := srv.Do("GET", "a-string"); v != "written" {
		t.Errorf("a-string = %q: the SET before the failure should stand", v)
	}
	var got []Command
	tr.Each(func(c Command) { got = append(got, c) })
	if len(got) == 0 {
		t.Fatal("nothing traced")
	}
	last := got[len(got)-1] // the EVAL after a first EVALSHA's NOSCRIPT
	var inside [][]string
	for ran := last.Ran; ran != ""; {
		var cmd string
		cmd, ran = NextRan(ran)
		inside = append(inside, strings.Split(cmd, ranArg))
	}
	want := [][]string{{"SET", "a-string", "written"}, {"GET", "not-a-string"}}
	if !slices.EqualFunc(inside, want, slices.Equal) || last.Reply != "error WRONGTYPE" {
		t.Errorf("traced %q inside, reply %q; want %q inside and error WRONGTYPE", inside, last.Reply, want)
	}
	// A Lua error (not a command's) is reported the same way.
	err = NewScript("breaks", `redis.call('SET', KEYS[1], 'again'); local t = nil; return t.x`).
		Exec(ctx, rdb, []string{"a-string"}, nil).Error()
	if err == nil || !strings.Contains(err.Error(), "attempt to index") {
		t.Errorf("Exec: %v, want Lua's error", err)
	}
}

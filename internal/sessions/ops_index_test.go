package sessions

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// Touch and IncrViews record, in the same script (one round trip), when a
// logged-in session was last seen and which instance served it; an
// anonymous session has no index and gets none.
func TestOpsKeepTheSessionIndexCurrent(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := context.Background()
	do := func(cmd rueidis.Completed) rueidis.RedisResult { return rdb.Do(ctx, cmd) }
	store := func(token, blob string) {
		t.Helper()
		if err := do(rdb.B().Set().Key(Key(token)).Value(blob).Ex(time.Hour).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	entry := func() map[string]any {
		t.Helper()
		raw, err := do(rdb.B().Hget().Key(IndexKey("alice")).Field(ID("alice-token")).Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		var e map[string]any
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			t.Fatal(err)
		}
		return e
	}
	store("alice-token", `{"deadline":"2099-01-01T00:00:00.000Z","values":{"user":{"username":"alice","role":"student"}}}`)
	store("anon-token", `{"deadline":"2099-01-01T00:00:00.000Z","values":{}}`)
	if err := do(rdb.B().Hset().Key(IndexKey("alice")).FieldValue().
		FieldValue(ID("alice-token"), `{"token":"alice-token","created":1,"last_seen":1,"instance":"old"}`).Build()).Error(); err != nil {
		t.Fatal(err)
	}

	a := NewOps(rdb)
	a.Instance = "a"
	seen := time.Now().Truncate(time.Millisecond)
	if err := a.Touch(ctx, "alice-token", "alice", seen, seen.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if e := entry(); e["instance"] != "a" || e["last_seen"] != float64(seen.UnixMilli()) {
		t.Errorf("after Touch on a: entry %v, want instance a, last_seen %d", e, seen.UnixMilli())
	}

	b := NewOps(rdb)
	b.Instance = "b"
	if n, _, _, err := b.IncrViews(ctx, "alice-token", "alice", Visit{Addr: "127.0.0.1"}); err != nil || n != 1 {
		t.Fatalf("IncrViews = %d, %v", n, err)
	}
	if e := entry(); e["instance"] != "b" || e["token"] != "alice-token" {
		t.Errorf("after IncrViews on b: entry %v, want instance b and the rest kept", e)
	}

	if _, _, _, err := b.IncrViews(ctx, "anon-token", "", Visit{Addr: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Touch(ctx, "anon-token", "", seen, seen.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	keys, _ := do(rdb.B().Keys().Pattern("user:*").Build()).AsStrSlice()
	if len(keys) != 1 {
		t.Errorf("keys user:* = %v, want only alice's index", keys)
	}
}

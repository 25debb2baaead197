package sessions

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// CountChecked counts, in the round trip that reads the session, only a
// session loadAndSave would count: anything else is left as it was, byte
// for byte, with nothing noted on the browsers list, for the usual path.
func TestCountCheckedCountsOnlyWhatTheChecksPass(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	rdb := rs.Client(t)
	ctx := context.Background()
	// Go writes a time in the values without trailing zeros (…:19.53Z), the
	// deadline with three digits; the script compares them as the app's
	// clock is sent, three digits always.
	now := time.Date(2026, 12, 8, 1, 37, 19, 530_000_000, time.UTC)
	const gen = "4874ab3d7a607d6f"
	user := User{Username: "alice", Role: "student", Gen: gen}
	session := func(seen, deadline time.Time, u User) string {
		raw, err := Codec{}.Encode(deadline, map[string]any{KeyUser: u, KeySeen: seen, KeyViews: 4,
			KeyOrigin: Origin{Process: "p1", Instance: "a", At: seen}})
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	account := `{"username":"alice","role":"student","hash":"x","created":"2026-12-06T10:00:00Z","gen":"` + gen + `"}`
	check := CountCheck{User: "alice", Gen: gen, AccountKey: "user:alice", SeenAfter: now.Add(-time.Minute), Now: now}
	after := func(seenAfter time.Time) CountCheck { c := check; c.SeenAfter = seenAfter; return c }
	visit := Visit{Addr: "192.0.2.1", Device: "Firefox on Linux", LoggedIn: true, Process: "p1"}
	live := session(now.Add(-time.Second), now.Add(time.Hour), user)

	cases := []struct {
		name    string
		raw     string // the stored session; "" for none
		account string // the stored account; "" for none
		check   CountCheck
		counts  bool
	}{
		{"passes every check", live, account, check, true},
		{"seen on a whole second", session(now.Truncate(time.Second), now.Add(time.Hour), user), account, check, true},
		{"seen a millisecond after the cutoff, written short", live, account, after(now.Add(-time.Second - time.Millisecond)), true},
		{"seen at the cutoff, written short", live, account, after(now.Add(-time.Second)), false},
		{"seen a millisecond before the cutoff, written short", live, account, after(now.Add(-time.Second + time.Millisecond)), false},
		{"no session", "", account, check, false},
		{"a touch is due", session(now.Add(-time.Minute), now.Add(time.Hour), user), account, check, false},
		{"past its deadline", session(now.Add(-time.Second), now, user), account, check, false},
		{"its credentials changed", live, `{"username":"alice","role":"student","hash":"y","gen":"0000000000000001"}`, check, false},
		{"no account", live, "", check, false},
		{"another generation in the session", session(now.Add(-time.Second), now.Add(time.Hour), User{Username: "alice", Role: "student", Gen: "0000000000000001"}),
			account, check, false},
		{"another user in the session", session(now.Add(-time.Second), now.Add(time.Hour), User{Username: "bob", Role: "student", Gen: gen}),
			account, check, false},
		{"not a session", `{"deadline":"x"}`, account, check, false},
	}
	if !strings.Contains(live, `"seen":"2026-12-08T01:37:18.53Z"`) {
		t.Fatalf("the session's time seen is not written short, as this test needs:\n%s", live)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			token := "token-" + string(rune('a'+i))
			visit := visit
			visit.Addr = "192.0.2." + string(rune('1'+i))
			if c.raw != "" {
				storeRaw(t, rdb, token, c.raw)
			}
			entry := `{"created":1,"last_seen":1,"instance":"a"}`
			if err := rdb.Do(ctx, rdb.B().Hset().Key(IndexKey("alice")).FieldValue().FieldValue(ID(token), entry).Build()).Error(); err != nil {
				t.Fatal(err)
			}
			if c.account != "" {
				if err := rdb.Do(ctx, rdb.B().Set().Key("user:alice").Value(c.account).Build()).Error(); err != nil {
					t.Fatal(err)
				}
			} else if err := rdb.Do(ctx, rdb.B().Del().Key("user:alice").Build()).Error(); err != nil {
				t.Fatal(err)
			}
			o := NewOps(rdb)
			o.Instance = "a"
			got, ok := o.CountChecked(ctx, token, c.check, visit)
			after, _ := rdb.Do(ctx, rdb.B().Get().Key(Key(token)).Build()).ToString()
			listed, _ := rdb.Do(ctx, rdb.B().Exists().Key(BrowsersKey(visit.Addr)).Build()).AsInt64()
			if !c.counts {
				if ok || after != c.raw || listed != 0 {
					t.Fatalf("counted = %v, session %q (was %q), browsers listed %d: want nothing done", ok, after, c.raw, listed)
				}
				return
			}
			if !ok || got.Err != nil || got.N != 5 || string(got.Raw) != c.raw {
				t.Fatalf("CountChecked = %d, %v, %q, %v: want 5, the session as it was, counted", got.N, got.Err, got.Raw, ok)
			}
			if v := storedValues(t, rdb, token)[KeyViews]; v != 5 {
				t.Fatalf("stored count %v, want 5", v)
			}
			if len(got.List.Rows) != 1 || got.List.Self != ID(token) {
				t.Fatalf("browsers %+v, want this one", got.List)
			}
		})
	}
}

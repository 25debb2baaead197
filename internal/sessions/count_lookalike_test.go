package sessions

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// The count script finds the count, the last counter and the origin by
// searching the stored JSON, not by decoding it. Strings that look like
// what it searches for (a user named `","views":1}}`, an instance named
// `a}` or `a/b`) are escaped where they are stored, so they never match;
// every session still counts as decoding it would, stays JSON, and
// decodes. This keeps that reasoning checked.
func TestCountInPlaceIgnoresLookalikeStrings(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	rdb := rs.Client(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	lookalikes := []string{
		`x","views":1}}`, `"views":12}}`, `}}`, `x\`, "\xff\xfe", "\u2028<&>",
		`"counted":{"process":"p1","instance":"a"}`, `"origin":{"process":"p1","instance":"a"}`,
		strings.Repeat("v", 4096) + `"views":1}}`,
	}
	instances := []string{`a}`, `a/b`, `a<b>&`, `x","process":"p1`, `a","instance":"a`, "\xff", ""}
	here := Origin{Process: "p1", Instance: "a", At: at}
	starts := map[string]map[string]any{}
	for _, s := range lookalikes {
		starts["user "+s] = map[string]any{KeyViews: 3, KeyUser: User{Username: s, Role: s, Gen: s}, KeyOrigin: here}
		starts["lab "+s] = map[string]any{KeyViews: 3, KeyOrigin: here,
			KeyLab: Lab{Browsers: &LabBrowsers{At: 1, This: s, Other: s}, Seen: map[string]int64{s: 4}}}
	}
	for _, inst := range instances {
		starts["origin on "+inst] = map[string]any{KeyViews: 2, KeyOrigin: Origin{Process: "p1", Instance: inst, At: at}}
		starts["counted on "+inst] = map[string]any{KeyViews: 2, KeyOrigin: Origin{Process: "p9", Instance: "z", At: at}, KeyCounted: Counted{Process: "p1", Instance: inst}}
	}
	type step struct{ instance, process string }
	steps := []step{{"a", "p1"}, {"a", "p1"}, {"a", "p2"}, {"a", "p2"}}
	for _, inst := range instances {
		steps = append(steps, step{inst, "p1"}, step{inst, "p1"})
	}
	steps = append(steps, step{"a", `p1"`}, step{"a", `p1"`}, step{"a", "p1"})
	for name, values := range starts {
		raw, err := Codec{}.Encode(at.Add(time.Hour), values)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) {
			inPlace, decoded := "in-place-"+name, "decoded-"+name
			storeRaw(t, rdb, inPlace, string(raw))
			storeRaw(t, rdb, decoded, string(raw))
			for i, s := range steps {
				b, _ := rdb.Do(ctx, rdb.B().Get().Key(Key(decoded)).Build()).ToString()
				storeRaw(t, rdb, decoded, viewsFirst(t, b))
				o := NewOps(rdb)
				o.Instance = s.instance
				var n [2]int
				var err error
				for k, token := range []string{inPlace, decoded} {
					if n[k], _, _, err = o.IncrViews(ctx, token, "", Visit{Addr: "192.0.2.1", Device: "Firefox on Linux", Process: s.process}); err != nil {
						t.Fatal(err)
					}
				}
				got, want := storedValues(t, rdb, inPlace), storedValues(t, rdb, decoded)
				if n[0] != n[1] || !reflect.DeepEqual(got, want) {
					t.Fatalf("count %d (%q on %q) returned %d, decoding %d:\nin place %#v\ndecoded  %#v", i+1, s.process, s.instance, n[0], n[1], got, want)
				}
			}
		})
	}
}

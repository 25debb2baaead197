package sessions

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// viewsFirst writes a stored session with its count first, as no writer of
// ours does: the count script must then decode it (its general path).
func viewsFirst(t *testing.T, raw string) string {
	t.Helper()
	body, ok := strings.CutSuffix(raw, "}}")
	i := strings.LastIndex(body, `,"views":`)
	if !ok || i < 0 || strings.Trim(body[i+len(`,"views":`):], "0123456789") != "" {
		return raw // the count is not last: the general path already
	}
	return strings.Replace(body[:i]+"}}", `"values":{`, `"values":{`+body[i+1:]+",", 1)
}

// storedValues is the session stored under token, decoded, with the lab's
// evidence times (Redis's clock) left out, so two sessions' values compare.
func storedValues(t *testing.T, rdb rueidis.Client, token string) map[string]any {
	t.Helper()
	b, err := rdb.Do(context.Background(), rdb.B().Get().Key(Key(token)).Build()).AsBytes()
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("%s is not JSON:\n%s", token, b)
	}
	_, values, err := Codec{}.Decode(b)
	if err != nil {
		t.Fatalf("%s does not decode: %v\n%s", token, err, b)
	}
	if l, ok := values[KeyLab].(Lab); ok {
		for _, m := range []*LabMove{l.Restart, l.Servers} {
			if m != nil {
				m.At = 0
			}
		}
	}
	return values
}

// ranInside names the commands the trace's scripts ran inside Redis, in order.
func ranInside(tr *redistrace.Trace) []string {
	var ran []string
	tr.Each(func(c redistrace.Command) {
		for cmd, rest := redistrace.NextRan(c.Ran); cmd != ""; cmd, rest = redistrace.NextRan(rest) {
			name, _, _ := redistrace.NextArg(cmd)
			ran = append(ran, name)
		}
	})
	return ran
}

// storeRaw stores raw as the session of token, for an hour.
func storeRaw(t *testing.T, rdb rueidis.Client, token, raw string) {
	t.Helper()
	if err := rdb.Do(context.Background(), rdb.B().Set().Key(Key(token)).Value(raw).Ex(time.Hour).Build()).Error(); err != nil {
		t.Fatal(err)
	}
}

// The count script replaces only the count of a session whose count ends it
// and that this process counted last (or created); it must leave every
// session as decoding it would: the same values after each count, from any
// start, on any process and instance.
func TestCountInPlaceSameAsDecoding(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	rdb := rs.Client(t)
	ctx := context.Background()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	starts := map[string]map[string]any{
		"new":           {KeyViews: 1, KeySeen: at, KeyOrigin: Origin{Process: "p1", Instance: "a", At: at}},
		"logged in":     {KeyUser: User{Username: "alice", Role: "student", Gen: "4874ab3d7a607d6f"}, KeyRememberMe: true, KeyOrigin: Origin{Process: "p1", Instance: "a", At: at}},
		"counted":       {KeyViews: 5, KeyOrigin: Origin{Process: "p1", Instance: "a", At: at}, KeyCounted: Counted{Process: "p2", Instance: "a"}},
		"lab's views":   {KeyViews: 7, KeyOrigin: Origin{Process: "p0", Instance: "z", At: at}, KeyLab: Lab{Restart: &LabMove{From: "p0", Process: "p1", Instance: "a", Views: 6, At: 1}}},
		"odd instance":  {KeyViews: 2, KeyOrigin: Origin{Process: "p1", Instance: `a/"b"`, At: at}},
		"no origin":     {KeyViews: 2},
		"counted first": {KeyViews: 3, KeyCounted: Counted{Process: "p1", Instance: "a"}, KeyOrigin: Origin{Process: "p9", Instance: "z", At: at}},
	}
	steps := []struct{ instance, process string }{
		{"a", "p1"}, {"a", "p1"}, {"a", "p2"}, {"a", "p2"}, {`a/"b"`, "p1"}, {"b", "p3"}, {"b", "p3"}, {"a", "p1"},
	}
	raws := map[string]string{}
	for name, values := range starts {
		raw, err := Codec{}.Encode(at.Add(time.Hour), values)
		if err != nil {
			t.Fatal(err)
		}
		raws[name] = string(raw)
	}
	// As a decoding script (cjson) may leave them: the lab after the origin,
	// holding this process; the lab's count last and none of the session's.
	raws["lab after origin"] = `{"deadline":"2099-01-01T00:00:00.000Z","values":{"origin":{"process":"p0","instance":"z","at":"2026-12-06T10:00:00.000Z"},` +
		`"lab":{"restart":{"from":"p9","process":"p1","instance":"a","views":6,"at":1}},"views":7}}`
	raws["lab's count last"] = `{"deadline":"2099-01-01T00:00:00.000Z","values":{"origin":{"process":"p1","instance":"a","at":"2026-12-06T10:00:00.000Z"},` +
		`"lab":{"restart":{"from":"p0","process":"p1","instance":"a","at":1,"views":6}}}}`
	for name, raw := range raws {
		t.Run(name, func(t *testing.T) {
			inPlace, decoded := "in-place-"+name, "decoded-"+name
			storeRaw(t, rdb, inPlace, raw)
			storeRaw(t, rdb, decoded, raw)
			for i, s := range steps {
				b, _ := rdb.Do(ctx, rdb.B().Get().Key(Key(decoded)).Build()).ToString()
				storeRaw(t, rdb, decoded, viewsFirst(t, b))
				o := NewOps(rdb)
				o.Instance = s.instance
				for _, token := range []string{inPlace, decoded} {
					if _, _, _, err := o.IncrViews(ctx, token, "", Visit{Addr: "192.0.2.1", Device: "Firefox on Linux", Process: s.process}); err != nil {
						t.Fatal(err)
					}
				}
				got, want := storedValues(t, rdb, inPlace), storedValues(t, rdb, decoded)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("count %d (%s on %s):\nin place %#v\ndecoded  %#v", i+1, s.process, s.instance, got, want)
				}
			}
		})
	}
}

// Touch replaces the time seen in place, or adds it by decoding; either way
// the other values stay as they were and the count stays last, where the
// count script finds it.
func TestTouchKeepsTheRest(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	rdb := rs.Client(t)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	seen := at.Add(time.Minute)
	for name, values := range map[string]map[string]any{
		"seen-before": {KeyViews: 4, KeySeen: at, KeyUser: User{Username: "alice", Role: "student"}, KeyOrigin: Origin{Process: "p1", Instance: "a", At: at}},
		"never-seen":  {KeyViews: 4, KeyUser: User{Username: "alice", Role: "student"}},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := Codec{}.Encode(at.Add(time.Hour), values)
			if err != nil {
				t.Fatal(err)
			}
			rs.MustDo("SET", Key(name), string(raw))
			if err := NewOps(rdb).Touch(ctx, name, "", seen, seen.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			b := rs.MustDo("GET", Key(name))
			_, got, err := Codec{}.Decode([]byte(b))
			if err != nil {
				t.Fatalf("%v\n%s", err, b)
			}
			values[KeySeen] = seen
			if !reflect.DeepEqual(got, values) || !strings.HasSuffix(b, `,"views":4}}`) {
				t.Errorf("after Touch:\n%s\nwant the values %#v, the count last", b, values)
			}
		})
	}
}

// The count replaced in place is written over the old number: the session
// ends with the new number whole, whether it grows a digit or had leading
// zeros, and keeps its expiry.
func TestCountInPlaceWritesTheWholeNumber(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	o := NewOps(rs.Client(t))
	o.Instance = "a"
	const head = `{"deadline":"2099-01-01T00:00:00.000Z","values":{"origin":{"process":"p1","instance":"a","at":"2026-12-06T10:00:00.000Z"},"views":`
	for _, tc := range []struct{ stored, want string }{
		{"1", "2"},
		{"9", "10"},
		{"99999", "100000"},
		{"007", "8"},
		{"0", "1"},
	} {
		t.Run(tc.stored, func(t *testing.T) {
			token := "tok-" + tc.stored
			rs.MustDo("SET", Key(token), head+tc.stored+"}}", "EX", "3600")
			if _, _, _, err := o.IncrViews(context.Background(), token, "", Visit{Addr: "192.0.2.1", Process: "p1"}); err != nil {
				t.Fatal(err)
			}
			if got := rs.MustDo("GET", Key(token)); got != head+tc.want+"}}" {
				t.Errorf("stored %s}}, after a count:\n%s\nwant it to end %s}}", tc.stored, got, tc.want)
			}
			if ttl := rs.MustDo("TTL", Key(token)); ttl == "-1" || ttl == "-2" {
				t.Errorf("TTL %s after a count, want the expiry kept", ttl)
			}
		})
	}
}

// An ACL user made before the count wrote in place (no +setrange) still
// counts: the script writes the whole session, as it did then, and its
// trace lists what ran, as MONITOR prints it (not the refused SETRANGE).
func TestCountWithoutSetrangeWritesTheWholeSession(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no", "--user", "old", "on", ">pw", "~*", "&*", "+@all", "-setrange")
	rdb, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, Username: "old", Password: "pw", DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	o := NewOps(redistrace.Client(rdb, false))
	o.Instance = "a"
	const head = `{"deadline":"2099-01-01T00:00:00.000Z","values":{"origin":{"process":"p1","instance":"a","at":"2026-12-06T10:00:00.000Z"},"views":`
	rs.MustDo("SET", Key("tok"), head+"1}}", "EX", "3600")
	for want := 2; want <= 3; want++ {
		ctx, tr := redistrace.Start(context.Background())
		if _, _, _, err := o.IncrViews(ctx, "tok", "", Visit{Addr: "192.0.2.1", Process: "p1"}); err != nil {
			t.Fatalf("count %d: %v", want, err)
		}
		if got := rs.MustDo("GET", Key("tok")); got != head+strconv.Itoa(want)+"}}" {
			t.Errorf("after count %d:\n%s\nwant it to end %d}}", want, got, want)
		}
		ran := ranInside(tr)
		if slices.Contains(ran, "SETRANGE") || !slices.Contains(ran, "SET") {
			t.Errorf("count %d: the trace says the script ran %v; Redis refused SETRANGE and ran SET", want, ran)
		}
	}
	if ttl := rs.MustDo("TTL", Key("tok")); ttl == "-1" || ttl == "-2" {
		t.Errorf("TTL %s after the counts, want the expiry kept", ttl)
	}
}

// An instance may be named anything (-instance): a name that Go's JSON and
// Redis's cjson write differently ('/', '<', DEL, bytes that are not UTF-8)
// still lets a session this process counted last be counted in place. Here
// another process counts first; this one's first count then decodes the
// session (it moved), and every count after it is in place.
func TestCountInPlaceForAnyInstanceName(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	rdb := rs.Client(t)
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, instance := range []string{"web-1", "10.0.0.7:8080", "eu/west/1", "<a&b>", "a\x7fb", "caf\xe9", "café", `q"\`, "a\u2028b"} {
		t.Run(strconv.Quote(instance), func(t *testing.T) {
			raw, err := Codec{}.Encode(at.Add(time.Hour), map[string]any{KeyViews: 1, KeyOrigin: Origin{Process: "p1", Instance: instance, At: at}})
			if err != nil {
				t.Fatal(err)
			}
			token := "tok-" + strconv.Quote(instance)
			storeRaw(t, rdb, token, string(raw))
			o := NewOps(redistrace.Client(rdb, false))
			o.Instance = instance
			for _, c := range []struct {
				process string
				inPlace bool
			}{{"p0", false}, {"p1", false}, {"p1", true}, {"p1", true}} {
				ctx, tr := redistrace.Start(context.Background())
				if _, _, _, err := o.IncrViews(ctx, token, "", Visit{Addr: "192.0.2.1", Process: c.process}); err != nil {
					t.Fatal(err)
				}
				ran := ranInside(tr)
				if inPlace := slices.Contains(ran, "SETRANGE"); inPlace != c.inPlace {
					t.Errorf("a count by %s ran %v, in place %v, want %v:\n%s", c.process, ran, inPlace, c.inPlace, rs.MustDo("GET", Key(token)))
				}
			}
			if got := storedValues(t, rdb, token)[KeyViews]; got != 5 {
				t.Errorf("views %v after four counts from 1", got)
			}
		})
	}
}

// cjsonString writes what Redis's cjson.encode writes: every byte alone and
// in random strings.
func TestCJSONStringIsRedisCJSON(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	rdb := rs.Client(t)
	inputs := []string{"", "web-1", "eu/west/1", "<a&b>", "café", "a\u2028b", "caf\xe9"}
	for c := range 256 {
		inputs = append(inputs, string([]byte{'a', byte(c), 'z'}))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		inputs = append(inputs, string(b))
	}
	cmds := make(rueidis.Commands, len(inputs))
	for i, s := range inputs {
		cmds[i] = rdb.B().Eval().Script("return cjson.encode(ARGV[1])").Numkeys(0).Arg(s).Build()
	}
	for i, res := range rdb.DoMulti(context.Background(), cmds...) {
		want, err := res.ToString()
		if err != nil {
			t.Fatal(err)
		}
		if got := cjsonString(inputs[i]); got != want {
			t.Errorf("cjsonString(%q) = %q, cjson writes %q", inputs[i], got, want)
		}
	}
}

// An ACL user made before CountedKey existed (no ~counted:*) still counts
// through a proxy: Redis refuses a script that names a key the user may not
// touch before it runs, so the count is sent again without the proxy's
// check, once per request, and the process says once what the ACL lacks.
func TestCountThroughAProxyWithAnOldACLCountsWithoutTheCheck(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no", "--user", "old", "on", ">pw", "~sess:*", "~browsers:*", "&*", "+@all")
	rdb, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rs.Addr()}, Username: "old", Password: "pw", DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	var logs strings.Builder
	o := NewOps(redistrace.Client(rdb, false))
	o.Instance, o.Log = "a", slog.New(slog.NewTextHandler(&logs, nil))
	const head = `{"deadline":"2099-01-01T00:00:00.000Z","values":{"origin":{"process":"p1","instance":"a","at":"2026-12-06T10:00:00.000Z"},"views":`
	rs.MustDo("SET", Key("tok"), head+"1}}", "EX", "3600")
	for want := 2; want <= 3; want++ {
		// The same id twice: without its key the proxy's retry cannot be
		// told from a new count, and counting it is what the app did before.
		n, _, _, err := o.IncrViews(context.Background(), "tok", "", Visit{Addr: "192.0.2.1", Process: "p1", Request: "req-1"})
		if err != nil || n != want {
			t.Fatalf("count %d through a proxy with the old ACL: %d, %v", want, n, err)
		}
	}
	if got := rs.MustDo("GET", Key("tok")); got != head+"3}}" {
		t.Errorf("stored %s, want it to end 3}}", got)
	}
	if n := strings.Count(logs.String(), "~counted:*"); n != 1 {
		t.Errorf("%d log lines name the missing ~counted:*, want 1:\n%s", n, logs.String())
	}
}

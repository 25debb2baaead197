package sessions

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// The count script keeps the lab's restart and servers evidence in the
// session it writes anyway: nothing until a count lands on another process
// with the count carried on, then the first such count for each kind, and
// the last counter only once it is not the creator. The count that records
// one returns it, so its page can show the tick; no other count returns any.
func TestCountRecordsTheLabsMoves(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := context.Background()
	token := "lab-token"
	blob := `{"deadline":"2099-01-01T00:00:00.000Z","values":{"views":1,"origin":{"process":"p1","instance":"a","at":"2026-01-01T00:00:00.000Z"}}}`
	if err := rdb.Do(ctx, rdb.B().Set().Key(Key(token)).Value(blob).Ex(time.Hour).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	load := func() map[string]any {
		t.Helper()
		b, err := rdb.Do(ctx, rdb.B().Get().Key(Key(token)).Build()).AsBytes()
		if err != nil {
			t.Fatal(err)
		}
		_, values, err := Codec{}.Decode(b)
		if err != nil {
			t.Fatalf("the session the count script wrote does not decode: %v\n%s", err, b)
		}
		return values
	}
	var noted Lab
	count := func(instance, process string) {
		t.Helper()
		noted = countAs(t, NewOps(rdb), token, instance, process)
	}

	count("a", "p1") // the creating process
	v := load()
	if _, ok := v[KeyCounted]; ok {
		t.Errorf("a count by the creating process stored %s: %v", KeyCounted, v[KeyCounted])
	}
	if l, _ := v[KeyLab].(Lab); l.Restart != nil || l.Servers != nil {
		t.Errorf("a count by the creating process recorded a move: %+v", l)
	}
	if !reflect.DeepEqual(noted, Lab{}) {
		t.Errorf("a count by the creating process says it noted %+v", noted)
	}

	count("a", "p2") // the same instance, restarted
	l, _ := load()[KeyLab].(Lab)
	if l.Restart == nil || l.Restart.From != "p1" || l.Restart.Process != "p2" || l.Restart.Views != 3 {
		t.Fatalf("after a count by a new process of instance a: restart = %+v, want from p1 to p2 at 3 views", l.Restart)
	}
	if noted.Restart == nil || *noted.Restart != *l.Restart || noted.Servers != nil {
		t.Errorf("the count that recorded the restart says it noted %+v, want restart %+v alone", noted, *l.Restart)
	}
	if count("a", "p2"); !reflect.DeepEqual(noted, Lab{}) {
		t.Errorf("the next count on the same process says it noted %+v", noted)
	}

	count("b", "p3") // another instance
	v = load()
	l, _ = v[KeyLab].(Lab)
	if l.Servers == nil || l.Servers.From != "a" || l.Servers.Instance != "b" || l.Servers.Views != 5 {
		t.Fatalf("after a count on instance b: servers = %+v, want from a to b at 5 views", l.Servers)
	}
	if noted.Servers == nil || *noted.Servers != *l.Servers || noted.Restart != nil {
		t.Errorf("the count that recorded the servers move says it noted %+v, want servers %+v alone", noted, *l.Servers)
	}
	if l.Restart.Process != "p2" {
		t.Errorf("the restart evidence changed: %+v", l.Restart)
	}
	if c, _ := v[KeyCounted].(Counted); c != (Counted{Process: "p3", Instance: "b"}) {
		t.Errorf("%s = %+v, want p3 on b", KeyCounted, c)
	}
	if n, _ := v[KeyViews].(int); n != 5 {
		t.Errorf("views = %d, want 5", n)
	}
}

// What the scripts write for a lab with every field (cjson: members in any
// order, numbers as it formats them) decodes on the fast path, as the
// reference decodes it: every request of a student past the restart step
// reads it.
func TestScriptsLabDecodesOnTheFastPath(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	rdb := rs.Client(t)
	ctx := context.Background()
	token := "lab-token"
	rs.MustDo("SET", Key(token), `{"deadline":"2099-01-01T00:00:00.000Z","values":{"user":{"username":"alice","role":"student","gen":"ca63e16314151bde"},"views":1,"origin":{"process":"p1","instance":"vm:8091","at":"2026-01-01T00:00:00.000Z"}}}`)
	count := func(instance, process string) {
		t.Helper()
		countAs(t, NewOps(rdb), token, instance, process)
	}
	check := func(step string) {
		t.Helper()
		b := []byte(rs.MustDo("GET", Key(token)))
		t.Log(step)
		readsTheLabByHand(t, b)
		sameAsReference(t, b)
	}
	count("vm:8091", "p2") // restart
	count("vm:8101", "p3") // servers
	check("after the moves")
	o := NewOps(rdb)
	for field, value := range map[string]any{
		"browsers":    LabBrowsers{At: 1796571746544, This: "Firefox on Linux: 3 views", Other: "Chrome on Linux: 1 views"},
		"httponly":    LabOutcomes{Hidden: 1796571746545, Exposed: 1796571746546},
		"fixation":    LabOutcomes{Hidden: 1796571746547},
		"login":       LabLogin{At: 1796571746548, Browser: "b1", Renewed: true, From: "f00d", Shared: true},
		"seen":        map[string]int64{"b1": 1796571746549, "b2": 1796571746550},
		"no_httponly": true,
		"no_renewal":  false,
	} {
		if err := o.LabNote(ctx, token, field, value, true); err != nil {
			t.Fatal(err)
		}
	}
	check("after every lab note")
	count("vm:8101", "p4") // decoded and written again by the count script
	check("after another count")
}

// countAs counts token's session as process, an instance named instance,
// would, and returns the lab evidence the count says it recorded.
func countAs(t *testing.T, o *Ops, token, instance, process string) Lab {
	t.Helper()
	o.Instance = instance
	_, _, noted, err := o.IncrViews(context.Background(), token, "", Visit{Addr: "127.0.0.1", Device: "Firefox on Linux", Process: process})
	if err != nil {
		t.Fatal(err)
	}
	return noted
}

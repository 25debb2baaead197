package views

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a-h/templ"
)

func renderString(t *testing.T, c templ.Component) string {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A kept rendering is what templ renders for the same inputs: each input
// the badge and the nav read is in the key, so changing any one of them,
// in any order, gives the fresh rendering, never an earlier one.
func TestKeptRenderingsAreFresh(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 55, 20, 0, time.UTC)
	var procs []Process
	for _, id := range []string{"a1b2c3", "d4e5f6"} {
		for _, instance := range []string{"a", "b&<"} {
			for _, age := range []time.Duration{0, 6 * time.Second, 7 * time.Minute, 8 * time.Minute, 26 * time.Hour} {
				for _, started := range []time.Time{now.Add(-age), now.Add(-age - time.Hour)} {
					procs = append(procs, Process{ID: id, Instance: instance, Started: started, Now: started.Add(age)})
				}
			}
		}
	}
	for round := range 2 { // the second round reads what the first kept
		for _, p := range procs {
			for _, oob := range []bool{false, true} {
				got := renderString(t, InstanceBadge(p, oob))
				want := renderString(t, instanceBadge(p, ago(p.Started, p.Now), oob))
				if got != want || !strings.Contains(got, clock(p.Started)) {
					t.Fatalf("round %d, badge %+v oob %v:\n got %s\nwant %s", round, p, oob, got, want)
				}
			}
		}
		for _, user := range []string{"", "alice", "bob", "a<b"} {
			for done := range LabSteps + 1 {
				for _, oob := range []bool{false, true} {
					got := renderString(t, NavLinks(user, LabProgress{Done: done}, oob))
					if want := renderString(t, navLinks(user, LabProgress{Done: done}, oob)); got != want {
						t.Fatalf("round %d, nav %q %d %v:\n got %s\nwant %s", round, user, done, oob, got, want)
					}
				}
			}
		}
	}
}

// A memo holds at most max renderings, and serves many goroutines at once.
func TestMemoIsBounded(t *testing.T) {
	m := memo[int]{max: 8}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				k := (i*7 + g) % 20
				if got := renderString(t, m.get(k, func() templ.Component { return templ.Raw(fmt.Sprint(k)) })); got != fmt.Sprint(k) {
					t.Errorf("key %d: %q", k, got)
				}
			}
		})
	}
	wg.Wait()
	if n := len(m.m); n > 8 {
		t.Errorf("%d renderings kept, want at most 8", n)
	}
}

// The kept "stay signed in" control, and the profile's live region around
// it, are what templ renders for the same input: touched or warning (near,
// at and past the warning's start) they are rendered afresh, with their
// times; otherwise the ones kept.
func TestStaySignedInControlIsTheTemplate(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 55, 20, 0, time.UTC)
	for _, left := range []time.Duration{-time.Hour, 0, time.Second, 4*time.Minute + 59*time.Second, 5 * time.Minute, 5*time.Minute + time.Second, 29 * time.Minute, 24 * time.Hour} {
		for _, warn := range []time.Duration{0, 5 * time.Minute} {
			for k := range 4 {
				s := StaySignedIn{IdleDeadline: now.Add(left), Now: now, WarnBefore: warn, Touched: k&1 == 1, Pushed: k&2 == 2}
				if got, want := renderString(t, StaySignedInControl(s)), renderString(t, staySignedInControl(s)); got != want {
					t.Fatalf("%+v:\n got %s\nwant %s", s, got, want)
				}
				if got, want := renderString(t, ProfileLive(s)), renderString(t, profileLive(s)); got != want {
					t.Fatalf("live region, %+v:\n got %s\nwant %s", s, got, want)
				}
			}
		}
	}
}

// SessionOrigin writes what templ's sessionOrigin writes for every mix of
// process, instance and age: nothing only where sessionOrigin says nothing.
func TestSessionOriginIsTheTemplate(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 55, 20, 0, time.UTC)
	here := Process{ID: "a1b2c3", Instance: "a", Started: now.Add(-time.Hour), Now: now}
	said := 0
	for _, process := range []string{"", "a1b2c3", "d4e5f6"} {
		for _, instance := range []string{"", "a", "b<&"} {
			for _, created := range []time.Time{now.Add(-2 * time.Hour), here.Started, now, {}} {
				o := Origin{Process: process, Instance: instance, Created: created, Here: here}
				got, want := renderString(t, SessionOrigin(o)), renderString(t, sessionOrigin(o))
				if got != want {
					t.Fatalf("%+v:\n got %s\nwant %s", o, got, want)
				}
				if want != "" {
					said++
				}
			}
		}
	}
	if said == 0 {
		t.Fatal("no origin was worth saying: the cases miss what the banner is for")
	}
}

// A slotted fragment is what templ renders with the same text in its place,
// escaped as { s } escapes it.
func TestSlottedIsTheTemplate(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 99, 100, 12345, -1, 1 << 40} {
		v := templ.Raw(strconv.Itoa(n))
		if got, want := renderString(t, Counter(n)), renderString(t, counter(v)); got != want {
			t.Fatalf("Counter(%d):\n got %s\nwant %s", n, got, want)
		}
		for _, oob := range []bool{false, true} {
			if got, want := renderString(t, ThisViews(n, oob)), renderString(t, thisViews(v, oob)); got != want {
				t.Fatalf("ThisViews(%d, %v):\n got %s\nwant %s", n, oob, got, want)
			}
		}
	}
	at := time.Date(2026, 12, 6, 10, 55, 20, 0, time.UTC)
	for _, b := range []Browsers{{}, {Rows: []BrowserRow{{Device: "a<b", CountedAt: at, This: true}}, More: 2, Presence: true, Max: 10, Window: time.Hour, Now: at}} {
		list := BrowsersList(b)
		if got, want := renderString(t, browsersBoxSlotted.around(list)), renderString(t, browsersBox(list)); got != want {
			t.Fatalf("browsers box:\n got %s\nwant %s", got, want)
		}
	}
	for _, s := range []string{"", "<b>&'\"", "x\xffy", "\x00slot\x00"} {
		if got, want := renderString(t, counterSlotted.with(s)), renderString(t, counter(text(s))); got != want {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

func TestSlottedFragmentWritesItsTextOnce(t *testing.T) {
	for name, f := range map[string]func(templ.Component) templ.Component{
		"never": func(templ.Component) templ.Component { return templ.Raw("<p></p>") },
		"twice": func(c templ.Component) templ.Component { return templ.Join(c, c) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: slottedOnce did not refuse it", name)
				}
			}()
			slottedOnce(f)
		}()
	}
}

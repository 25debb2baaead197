package views

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"
)

func TestZZGolden(t *testing.T) {
	dir := os.Getenv("GOLDEN")
	if dir == "" {
		t.Skip()
	}
	os.MkdirAll(dir, 0o755)
	var out strings.Builder
	r := func(name string, c templ.Component) {
		var b strings.Builder
		if err := c.Render(context.Background(), &b); err != nil {
			t.Fatal(err)
		}
		out.WriteString("== " + name + "\n" + b.String() + "\n")
	}
	for _, ago := range []time.Duration{0, 3 * time.Second, 7 * time.Minute, 3 * time.Hour} {
		proc := Process{ID: "a1b2c3", Instance: "te<st", Started: time.Date(2026, 12, 6, 10, 55, 20, 0, time.UTC).Add(-ago), Now: time.Date(2026, 12, 6, 10, 55, 20, 0, time.UTC)}
		for _, user := range []string{"", "bench", "a&b"} {
			for _, demo := range []bool{false, true} {
				p := Page{Title: "Profile", Instance: "test", Process: proc, User: user, DemoControls: demo, Lab: LabProgress{Done: 1}, Banner: "b"}
				prof := Profile{Username: user, Role: "student", Views: 3,
					Origin:       Origin{Process: "zz", Instance: "other", Created: proc.Now.Add(-time.Hour), Here: proc},
					IdleDeadline: proc.Now.Add(29 * time.Minute), WarnBefore: 5 * time.Minute, AbsDeadline: proc.Now.Add(24 * time.Hour), Now: proc.Now}
				r("layout", Layout(p, ProfilePage(prof)))
				r("fragment", Fragment(p, ProfilePage(prof)))
				p.HidePanel = true
				r("layout-nopanel", Layout(p, LoginPrompt("x")))
				r("count", Layout(p, CountPage(Count{Views: 4, User: user, Origin: prof.Origin})))
			}
		}
		r("badge", InstanceBadge(proc, true))
		r("hello", LiveHello(Hello{Process: proc, Previous: "x", Session: true, Views: 3}))
	}
	r("slot", RedisTraceSlot(true))
	r("hook", SessionEndedHook())
	os.WriteFile(dir+"/out.html", []byte(out.String()), 0o644)
}

package views

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// BenchmarkRenderProfile renders the whole /profile page as a logged-in
// GET does, without Redis or HTTP: what templ and the views cost alone
// (under cachegrind, instructions repeat exactly).
func BenchmarkRenderProfile(b *testing.B) {
	now := time.Date(2026, 12, 6, 10, 55, 20, 0, time.UTC)
	proc := Process{ID: "a1b2c3", Instance: "test", Started: now.Add(-7 * time.Minute), Now: now}
	p := Page{Title: "Profile", Instance: "test", Process: proc, User: "bench", DemoControls: true, Lab: LabProgress{Done: 1}}
	prof := Profile{
		Username: "bench", Role: "student", Views: 3,
		Origin:       Origin{Process: "a1b2c3", Instance: "test", Created: now.Add(-time.Minute), Here: proc},
		IdleDeadline: now.Add(29 * time.Minute), WarnBefore: 5 * time.Minute,
		AbsDeadline: now.Add(24 * time.Hour), Now: now,
	}
	var buf bytes.Buffer
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := Layout(p, ProfilePage(prof)).Render(ctx, &buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "bytes")
}

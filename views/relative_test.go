package views

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// A relative time is the server's words in an element that names its moment,
// which static/live.js reads to keep the words true; the moment is written as
// datetime writes it.
func TestRelativeElementsNameTheirMoment(t *testing.T) {
	now := time.Date(2026, 12, 7, 1, 30, 0, 0, time.UTC)
	then := now.Add(-3*time.Minute - 10*time.Second)
	later := now.Add(29*time.Minute + 40*time.Second)
	for _, tc := range []struct {
		el   relativeTag
		want string
	}{
		{agoElement(then, now), `<span data-ago="` + datetime(then) + `">` + ago(then, now) + `</span>`},
		{inParens(agoElement(then, now)), `(<span data-ago="2026-12-07T01:26:50Z">3 min ago</span>)`},
		{untilElement(later, now), `<span data-until="2026-12-07T01:59:40Z">` + until(later, now) + `</span>`},
		{sinceElement(then, "a text"), `(<span data-ago="2026-12-07T01:26:50Z">a text</span>)`},
		// A moment live.js could not read keeps the words alone.
		{agoElement(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), now), ago(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), now)},
	} {
		var b bytes.Buffer
		if err := tc.el.Render(context.Background(), &b); err != nil || b.String() != tc.want {
			t.Errorf("%+v wrote %q, %v; want %q", tc.el, b.String(), err, tc.want)
		}
	}
	var b bytes.Buffer
	if err := nowMeta(now.In(time.FixedZone("x", 3600))).Render(context.Background(), &b); err != nil ||
		b.String() != `<meta name="`+metaNow+`" content="2026-12-07T01:30:00Z"/>` {
		t.Errorf("nowMeta wrote %q, %v", b.String(), err)
	}
}

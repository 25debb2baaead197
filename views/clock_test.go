package views

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// clock and datetime write what time.Format with their layouts writes, for
// any moment.
func TestClockIsFormat(t *testing.T) {
	moments := []time.Time{
		time.Date(2026, 12, 6, 8, 16, 49, 7e6, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 6, 1, 12, 0, 0, 0, time.UTC),
		{},
	}
	for i := range 1000 {
		moments = append(moments, time.Unix(int64(i)*7919*3607+int64(i), 0))
	}
	for _, m := range moments {
		if got, want := clock(m), m.UTC().Format(clockLayout); got != want {
			t.Errorf("clock(%v) = %q, want %q", m, got, want)
		}
		if got, want := datetime(m), m.UTC().Format("2006-01-02T15:04:05Z"); got != want {
			t.Errorf("datetime(%v) = %q, want %q", m, got, want)
		}
		if got, want := timeOfDay(m), m.UTC().Format("15:04:05"); got != want {
			t.Errorf("timeOfDay(%v) = %q, want %q", m, got, want)
		}
	}
}

// ago and until write what their fmt.Sprintf forms wrote, for every
// minute of two days and every second of the first minutes.
func TestAgoUntilAreSprintf(t *testing.T) {
	now := time.Date(2026, 12, 6, 8, 16, 49, 7e6, time.UTC)
	var ds []time.Duration
	for s := range 600 {
		ds = append(ds, time.Duration(s)*time.Second+time.Duration(s%7)*100*time.Millisecond)
	}
	for m := range 48 * 60 {
		ds = append(ds, time.Duration(m)*time.Minute+29*time.Second)
	}
	for _, d := range ds {
		wantAgo := func() string {
			d := d.Round(time.Second)
			switch {
			case d < 5*time.Second:
				return "just now"
			case d < time.Minute:
				return fmt.Sprintf("%d s ago", int(d.Seconds()))
			case d < time.Hour:
				return fmt.Sprintf("%d min ago", int(d.Minutes()))
			default:
				return fmt.Sprintf("%d h %d min ago", int(d.Hours()), int(d.Minutes())%60)
			}
		}()
		if got := ago(now.Add(-d), now); got != wantAgo {
			t.Errorf("ago(%v) = %q, want %q", d, got, wantAgo)
		}
		wantUntil := func() string {
			d := d.Round(time.Minute)
			if d < time.Minute {
				return "in less than a minute"
			}
			h, m := int(d.Hours()), int(d.Minutes())%60
			if h == 0 {
				return fmt.Sprintf("in %d min", m)
			}
			return fmt.Sprintf("in %d h %d min", h, m)
		}()
		if got := until(now.Add(d), now); got != wantUntil {
			t.Errorf("until(%v) = %q, want %q", d, got, wantUntil)
		}
	}
}

func TestLifetimeSaysHoursOrMinutes(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24 h", 2 * time.Hour: "2 h", 150 * time.Hour: "150 h", 90 * time.Minute: "90 min",
		90 * time.Second: "1m30s", 0: "0s",
	} {
		var b strings.Builder
		if err := lifetime(d).Render(t.Context(), &b); err != nil || b.String() != want {
			t.Errorf("lifetime(%v) = %q, %v; want %q", d, b.String(), err, want)
		}
	}
}

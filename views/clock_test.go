package views

import (
	"testing"
	"time"
)

// clock writes what time.Format with clockLayout writes, for any moment.
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
	}
}

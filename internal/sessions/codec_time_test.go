package sessions

import (
	"math/rand/v2"
	"testing"
	"time"
)

// sameAsUnmarshalJSON fails t unless unmarshalTime reads raw as
// time.Time's UnmarshalJSON does: the same error or none, the same Time.
func sameAsUnmarshalJSON(t *testing.T, raw []byte) {
	t.Helper()
	var got, want time.Time
	gotErr, wantErr := unmarshalTime(&got, raw), want.UnmarshalJSON(raw)
	if (gotErr == nil) != (wantErr == nil) || got != want {
		t.Fatalf("unmarshalTime(%q) = %v, %v; UnmarshalJSON: %v, %v", raw, got, gotErr, want, wantErr)
	}
}

func TestUnmarshalTimeIsUnmarshalJSON(t *testing.T) {
	cases := []string{
		`"2026-12-06T08:16:49.007Z"`, `"2026-12-06T08:16:49Z"`, `"2026-12-06T08:16:49.1Z"`, `"2026-12-06T08:16:49.123456789Z"`,
		`"2026-12-06T08:16:49.1234567891Z"`, `"2026-12-06T08:16:49.Z"`, `"2026-12-06T08:16:49,007Z"`, `"2026-12-06T08:16:49.007+01:00"`,
		`"2024-02-29T00:00:00Z"`, `"2023-02-29T00:00:00Z"`, `"2000-02-29T00:00:00Z"`, `"1900-02-29T00:00:00Z"`, `"2026-04-31T00:00:00Z"`,
		`"2026-12-31T23:59:59.999Z"`, `"2026-12-31T24:00:00Z"`, `"2026-12-31T23:60:00Z"`, `"2026-12-31T23:59:60Z"`, `"2026-00-10T00:00:00Z"`,
		`"2026-13-10T00:00:00Z"`, `"2026-12-00T00:00:00Z"`, `"0000-01-01T00:00:00Z"`, `"9999-12-31T23:59:59.999999999Z"`,
		`"2026-12-06t08:16:49Z"`, `"2026-12-06T08:16:49z"`, `"2026-12-06 08:16:49Z"`, `"+026-12-06T08:16:49Z"`, `"2026-1a-06T08:16:49Z"`,
		`"2026-12-06T08:16:49.00aZ"`, `"2026-12-06T08:16:49.-1Z"`, `2026-12-06T08:16:49Z`, `"2026-12-06T08:16:49Z`, `null`, `""`, `"x"`,
	}
	for _, c := range cases {
		sameAsUnmarshalJSON(t, []byte(c))
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 100000 {
		at := time.Unix(r.Int64N(253402300800)-62135596800, r.Int64N(1e9)).UTC() // years 1 to 9999
		for _, layout := range []string{timeFormat, time.RFC3339Nano, time.RFC3339} {
			b, _ := at.MarshalJSON()
			if layout != time.RFC3339Nano {
				b = []byte(`"` + at.Format(layout) + `"`)
			}
			sameAsUnmarshalJSON(t, b)
			b[1+r.IntN(len(b)-2)] = "0123456789-:.TZ+x"[r.IntN(17)] // one byte changed
			sameAsUnmarshalJSON(t, b)
		}
	}
}

func FuzzUnmarshalTimeSameAsUnmarshalJSON(f *testing.F) {
	for _, s := range []string{`"2026-12-06T08:16:49.007Z"`, `"2024-02-29T23:59:59Z"`, `"2026-12-06T08:16:49.123456789Z"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { sameAsUnmarshalJSON(t, raw) })
}

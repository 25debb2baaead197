package sessions

import (
	"testing"
	"time"
)

// benchValues is a logged-in session with a count, as stored after GET /count.
func benchValues() (time.Time, map[string]any) {
	now := time.Date(2026, 11, 27, 10, 1, 12, 552e6, time.UTC)
	return now.Add(24 * time.Hour), map[string]any{
		KeyUser:  User{Username: "alice", Role: "student"},
		KeyViews: 3,
		KeySeen:  now,
	}
}

func BenchmarkCodecEncode(b *testing.B) {
	deadline, values := benchValues()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Codec{}).Encode(deadline, values); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCodecDecode(b *testing.B) {
	raw, err := (Codec{}).Encode(benchValues())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := (Codec{}).Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

package sessions

import (
	"testing"
	"time"
)

// benchValues is a logged-in session with a count, as stored after GET /count
// (with the credential generation and the origin).
func benchValues() (time.Time, map[string]any) {
	now := time.Date(2026, 11, 27, 10, 1, 12, 552e6, time.UTC)
	return now.Add(24 * time.Hour), map[string]any{
		KeyUser:   User{Username: "alice", Role: "student", Gen: "4874ab3d7a607d6f"},
		KeyViews:  3,
		KeySeen:   now,
		KeyOrigin: Origin{Process: "6d5dcf", Instance: "vm:8080", At: now},
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

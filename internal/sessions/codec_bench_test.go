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

// labStored is a student's session after the restart and servers steps, as
// Redis held it (the count script's cjson: members in any order). Every
// request of such a session decodes the lab's evidence and its last counter.
const labStored = `{"deadline":"2026-12-07T15:38:57.414Z","values":{"lab":{"servers":{"views":57702,"from":"vm:8091","instance":"vm:8101","at":1796571746544,"process":"4ed79d"},"restart":{"views":647989,"from":"89c18f","instance":"vm:8201","process":"b7ca7e","at":1796571859144}},"origin":{"at":"2026-12-06T15:38:57.415Z","instance":"vm:8091","process":"e86aee"},"seen":"2026-12-06T15:45:54.895Z","counted":{"instance":"vm:8201","process":"5405d3"},"user":{"username":"alice1","role":"student","gen":"ca63e16314151bde"},"views":812159}}`

func BenchmarkCodecDecodeLab(b *testing.B) {
	raw := []byte(labStored)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := (Codec{}).Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// A decode allocates no more than it did when each figure was measured
// (BenchmarkCodecDecode, BenchmarkCodecDecodeLab): the values' own keys are
// constants, their strings cut from one copy of the session.
func TestDecodeAllocations(t *testing.T) {
	plain, err := (Codec{}).Encode(benchValues())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		raw  []byte
		max  float64
	}{
		{"logged in", plain, 8},
		{"lab's evidence", []byte(labStored), 13},
	} {
		n := testing.AllocsPerRun(100, func() {
			if _, _, err := (Codec{}).Decode(c.raw); err != nil {
				t.Fatal(err)
			}
		})
		if n > c.max {
			t.Errorf("%s: %v allocations per decode, want at most %v", c.name, n, c.max)
		}
	}
}

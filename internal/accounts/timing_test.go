package accounts

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

func newStore(tb testing.TB, cost int) *Store {
	tb.Helper()
	rs := redistest.Start(tb)
	rdb := rs.Client(tb)
	return New(rdb, cost)
}

// The dummy hash an unknown user is checked against costs what a real one
// does: same algorithm, same cost, so the comparison takes as long.
func TestDummyHashCostsWhatARealOneDoes(t *testing.T) {
	for _, cost := range []int{bcrypt.MinCost, 6} {
		s := New(nil, cost)
		got, err := bcrypt.Cost(s.dummies.at(cost))
		if err != nil || got != cost {
			t.Errorf("dummy hash cost %d (%v), want %d", got, err, cost)
		}
	}
}

// An unknown user and a wrong password get the same error in about the same
// time. The check is against gross differences only (skipping bcrypt makes
// one path ~100x faster): medians of interleaved tries, and it fails only if
// three rounds in a row all show more than 3x, so a busy machine cannot fail
// it. Exact numbers live in BenchmarkAuthenticate.
func TestUnknownUserTakesAsLongAsWrongPassword(t *testing.T) {
	const cost = 6 // a few ms a comparison (more under -race): far above a Redis round trip
	s := newStore(t, cost)
	ctx := context.Background()
	if _, err := s.Create(ctx, "alice", "correct-horse"); err != nil {
		t.Fatal(err)
	}
	paths := []struct{ name, user string }{
		{"wrong password", "alice"},
		{"unknown user", "nobody"},
		{"malformed username", "<script>"},
	}
	var ratio float64
	for round := 0; round < 3; round++ {
		samples := make([][]time.Duration, len(paths))
		for range 5 {
			for i, p := range paths {
				start := time.Now()
				_, err := s.Authenticate(ctx, p.user, "wrong-horse")
				samples[i] = append(samples[i], time.Since(start))
				if !errors.Is(err, ErrBadCredentials) {
					t.Fatalf("%s: err %v, want ErrBadCredentials", p.name, err)
				}
			}
		}
		medians := make([]time.Duration, len(paths))
		for i := range samples {
			slices.Sort(samples[i])
			medians[i] = samples[i][len(samples[i])/2]
		}
		lo, hi := slices.Min(medians), slices.Max(medians)
		ratio = float64(hi) / float64(max(lo, 1))
		t.Logf("round %d medians: %v (%s, %s, %s)", round, medians, paths[0].name, paths[1].name, paths[2].name)
		if ratio <= 3 {
			return
		}
	}
	t.Errorf("slowest login path took %.1fx the fastest in three rounds: the difference tells which usernames exist", ratio)
}

// go test -bench Authenticate ./internal/accounts/
func BenchmarkAuthenticate(b *testing.B) {
	s := newStore(b, bcrypt.DefaultCost)
	ctx := context.Background()
	if _, err := s.Create(ctx, "alice", "correct-horse"); err != nil {
		b.Fatal(err)
	}
	for _, p := range []struct{ name, user, password string }{
		{"right password", "alice", "correct-horse"},
		{"wrong password", "alice", "wrong-horse"},
		{"unknown user", "nobody", "wrong-horse"},
		{"malformed username", "<script>", "wrong-horse"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				_, _ = s.Authenticate(ctx, p.user, p.password)
			}
		})
	}
}

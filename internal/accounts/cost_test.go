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

// After -bcrypt-cost changes (raised or lowered), a wrong password for an
// account whose hash has the old cost takes as long as an unknown name:
// medians of interleaved tries, failing only when three rounds in a row
// differ by more than 3x (the costs here differ by 16x, so the old code
// fails every round; a busy machine cannot fail the new).
func TestLoginTimingIgnoresTheStoredHashCost(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to int
	}{
		{"cost raised", 4, 8},
		{"cost lowered", 8, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := redistest.Start(t)
			rdb := rs.Client(t)
			ctx := context.Background()
			if _, err := New(rdb, tc.from).Create(ctx, "old", "correct-horse"); err != nil {
				t.Fatal(err)
			}
			s := New(rdb, tc.to) // the process restarted with the new -bcrypt-cost
			if _, err := s.Create(ctx, "new", "correct-horse"); err != nil {
				t.Fatal(err)
			}
			users := []string{"old", "new", "nobody"}
			var ratio float64
			for round := range 3 {
				samples := make([][]time.Duration, len(users))
				for range 5 {
					for i, u := range users {
						start := time.Now()
						_, err := s.Authenticate(ctx, u, "wrong-horse")
						samples[i] = append(samples[i], time.Since(start))
						if !errors.Is(err, ErrBadCredentials) {
							t.Fatalf("%s: %v", u, err)
						}
					}
				}
				medians := make([]time.Duration, len(users))
				for i := range samples {
					slices.Sort(samples[i])
					medians[i] = samples[i][len(samples[i])/2]
				}
				ratio = float64(slices.Max(medians)) / float64(max(slices.Min(medians), 1))
				t.Logf("round %d medians (old hash, new hash, unknown): %v", round, medians)
				if ratio <= 3 {
					break
				}
			}
			if ratio > 3 {
				t.Errorf("the slowest path took %.1fx the fastest: the time tells which names exist", ratio)
			}

			// A correct login rehashes the old hash at the current cost.
			if _, err := s.Authenticate(ctx, "old", "correct-horse"); err != nil {
				t.Fatal(err)
			}
			a, err := s.Get(ctx, "old")
			if err != nil {
				t.Fatal(err)
			}
			if c, _ := bcrypt.Cost([]byte(a.Hash)); c != tc.to {
				t.Errorf("after a correct login the hash has cost %d, want %d", c, tc.to)
			}
			if _, err := s.Authenticate(ctx, "old", "correct-horse"); err != nil {
				t.Errorf("login after the rehash: %v", err)
			}
			// Every hash now has the current cost: nothing pads to the old one.
			if top, err := s.topCost(ctx); err != nil || top != tc.to {
				t.Errorf("highest cost in use %d (%v), want %d", top, err, tc.to)
			}
		})
	}
}

// Accounts stored before the costs were counted are counted once.
func TestHashCostsOfOlderAccountsAreCounted(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := context.Background()
	if _, err := New(rdb, 6).Create(ctx, "early", "correct-horse"); err != nil {
		t.Fatal(err)
	}
	rs.MustDo("DEL", CostsKey) // as if made before this code
	if top, err := New(rdb, 4).topCost(ctx); err != nil || top != 6 {
		t.Errorf("highest cost %d (%v), want 6 from the stored account", top, err)
	}
	if got := rs.MustDo("HGET", CostsKey, "6"); got != "1" {
		t.Errorf("count of cost 6 = %q, want 1", got)
	}
}

// A correct login with the old password that checked the old hash before a
// password change and rehashes after it must not bring the old password
// back or touch the new credential generation: the rehash applies only if
// the stored hash is still the one the login checked.
func TestRehashAfterAPasswordChangeKeepsTheNewPassword(t *testing.T) {
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	ctx := context.Background()
	if _, err := New(rdb, 4).Create(ctx, "racer", "old-password"); err != nil {
		t.Fatal(err)
	}
	s := New(rdb, 5)                    // a cost change: the next correct login rehashes
	checked, err := s.Get(ctx, "racer") // what the racing login read and checked
	if err != nil {
		t.Fatal(err)
	}
	gen, err := setPassword(ctx, s, "racer", "new-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.upgrade(ctx, checked, "old-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "racer", "old-password"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password after the change and a late rehash: %v, want ErrBadCredentials", err)
	}
	if _, err := s.Authenticate(ctx, "racer", "new-password"); err != nil {
		t.Errorf("new password after a late rehash: %v", err)
	}
	if ok, err := s.Current(ctx, "racer", gen); err != nil || !ok {
		t.Errorf("the password change's generation is current = %v (%v), want true", ok, err)
	}
	if m, err := rdb.Do(ctx, rdb.B().Hgetall().Key(CostsKey).Build()).AsIntMap(); err != nil || m["4"] != 0 || m["5"] != 1 {
		t.Errorf("hash costs %v (%v), want one at cost 5", m, err)
	}
}

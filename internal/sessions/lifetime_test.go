package sessions

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/alexedwards/scs/v2/memstore"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

func TestEndsAt(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		seen     time.Time
		deadline time.Time
		idle     time.Duration
		want     time.Time
	}{
		{"idle deadline when it comes first", now, now.Add(time.Hour), 10 * time.Minute, now.Add(10 * time.Minute)},
		{"absolute deadline when it comes first", now, now.Add(5 * time.Minute), 10 * time.Minute, now.Add(5 * time.Minute)},
		{"absolute deadline without an idle timeout", now, now.Add(time.Hour), 0, now.Add(time.Hour)},
		{"long over when no activity was ever recorded", time.Time{}, now.Add(time.Hour), 10 * time.Minute, time.Time{}.Add(10 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EndsAt(tt.seen, tt.deadline, tt.idle); !got.Equal(tt.want) {
				t.Errorf("EndsAt = %v, want %v", got, tt.want)
			}
		})
	}
}

// IdleStore writes every key to end when EndsAt says, counting the write
// as activity: the idle deadline when it comes first, else the absolute one.
// (It checks the expiry the store is given, not a clock: a short TTL and a
// sleep fail on a slow machine.)
func TestIdleStoreCommitsWithTheIdleDeadline(t *testing.T) {
	rec := &expiryRecorder{Store: memstore.NewWithCleanupInterval(0)}
	s := IdleStore{Store: rec, Idle: time.Hour}
	for _, tc := range []struct {
		name     string
		deadline time.Duration // from now
		want     time.Duration // the key's life, from the write
	}{
		{"idle deadline first", 2 * time.Hour, time.Hour},
		{"absolute deadline first", 30 * time.Minute, 30 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			if err := s.Commit("tok", []byte("x"), before.Add(tc.deadline)); err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			if rec.expiry.Before(before.Add(tc.want)) || rec.expiry.After(after.Add(tc.want)) {
				t.Errorf("key expires %v after the write, want %v", rec.expiry.Sub(before), tc.want)
			}
			if _, found, _ := rec.Find("tok"); !found {
				t.Error("key not stored")
			}
		})
	}
}

// expiryRecorder is a real store that remembers the expiry of its last write.
type expiryRecorder struct {
	scs.Store
	expiry time.Time
}

func (r *expiryRecorder) Commit(token string, b []byte, expiry time.Time) error {
	r.expiry = expiry
	return r.Store.Commit(token, b, expiry)
}

// Both implementations of the session operations give handlers what they
// need without handlers decoding stored bytes: Times the two clocks, Take
// the view count a renewed token carries over.
func TestOpsReturnTimesAndCarriedViews(t *testing.T) {
	rs := redistest.Start(t)
	deadline := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	seen := time.Now().UTC().Truncate(time.Millisecond)
	impls := map[string]interface {
		Times(ctx context.Context, token string) (Times, error)
		Take(ctx context.Context, token string) (Taken, error)
	}{
		"redis":  NewOps(rs.Client(t)),
		"memory": &MemoryOps{Store: memstore.New()},
	}
	store := map[string]func(token string, b []byte){
		"redis": func(token string, b []byte) {
			rdb := rs.Client(t)
			if err := rdb.Do(context.Background(), rdb.B().Set().Key(Key(token)).Value(string(b)).Build()).Error(); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, ops := range impls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			put := store[name]
			if put == nil {
				m := ops.(*MemoryOps)
				put = func(token string, b []byte) {
					if err := m.Store.Commit(token, b, time.Now().Add(time.Hour)); err != nil {
						t.Fatal(err)
					}
				}
			}
			b, err := Codec{}.Encode(deadline, map[string]any{KeyViews: 7, KeySeen: seen})
			if err != nil {
				t.Fatal(err)
			}
			put("tok", b)
			got, err := ops.Times(ctx, "tok")
			if err != nil || !got.Deadline.Equal(deadline) || !got.Seen.Equal(seen) {
				t.Errorf("Times = %+v, %v; want deadline %v, seen %v", got, err, deadline, seen)
			}
			put("junk", []byte("not a session"))
			if _, err := ops.Times(ctx, "junk"); !errors.Is(err, ErrNoSession) {
				t.Errorf("Times of a value that is not a session: %v, want ErrNoSession", err)
			}
			if _, err := ops.Times(ctx, "none"); !errors.Is(err, ErrNoSession) {
				t.Errorf("Times of a missing key: %v, want ErrNoSession", err)
			}
			if got, err := ops.Take(ctx, "tok"); err != nil || got.Views != 7 {
				t.Errorf("Take = %+v, %v; want the 7 views the key held", got, err)
			}
			if _, err := ops.Times(ctx, "tok"); !errors.Is(err, ErrNoSession) {
				t.Errorf("Times after Take: %v, want ErrNoSession", err)
			}
		})
	}
}

func TestTouchEvery(t *testing.T) {
	for idle, want := range map[time.Duration]time.Duration{
		30 * time.Minute: 3 * time.Minute,
		2 * time.Hour:    5 * time.Minute,
		time.Minute:      6 * time.Second,
		0:                5 * time.Minute,
	} {
		if got := TouchEvery(idle); got != want {
			t.Errorf("TouchEvery(%v) = %v, want %v", idle, got, want)
		}
	}
}

// A flood of new anonymous sessions from one address leaves at most the
// throttle's limit of keys alive: each lives FreshFor, the limit's window.
func TestFreshForIsTheAnonymousWindow(t *testing.T) {
	if w := throttle.DefaultPolicy.Anonymous.Window; w != FreshFor {
		t.Errorf("throttle's anonymous window %v, FreshFor %v: keep them equal", w, FreshFor)
	}
}

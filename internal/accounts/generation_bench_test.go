package accounts

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// BenchmarkCurrent is the credential check every request of a logged-in
// session makes: the account through the client-side cache, unchanged.
func BenchmarkCurrent(b *testing.B) {
	s := newStore(b, bcrypt.MinCost)
	ctx := context.Background()
	a, err := s.Create(ctx, "bench", "bench-password")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := s.Current(ctx, "bench", a.Gen); !ok || err != nil {
			b.Fatalf("current: %v %v", ok, err)
		}
	}
}

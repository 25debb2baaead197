package accounts

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// A password change and "log out everywhere else" each give the account a
// new credential generation: sessions holding the old one are no longer
// current, the one the caller keeps is. A password change also swaps the
// hash, and neither touches an account that does not exist.
func TestCredentialChangesEndOlderGenerations(t *testing.T) {
	s := newStore(t, bcrypt.MinCost)
	ctx := context.Background()
	a, err := s.Create(ctx, "gwen", "old-password")
	if err != nil {
		t.Fatal(err)
	}
	current := func(gen string) bool {
		t.Helper()
		ok, err := s.Current(ctx, "gwen", gen)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !current(a.Gen) {
		t.Fatal("a new account's generation is not current")
	}

	t.Run("password change", func(t *testing.T) {
		before := a.Gen
		gen, err := setPassword(ctx, s, "gwen", "new-password")
		if err != nil {
			t.Fatal(err)
		}
		if gen == before || current(before) || !current(gen) {
			t.Errorf("after a password change: old generation current %v, new (%q, was %q) current %v; want false, true",
				current(before), gen, before, current(gen))
		}
		if _, err := s.Authenticate(ctx, "gwen", "old-password"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("old password after the change: %v, want ErrBadCredentials", err)
		}
		if _, err := s.Authenticate(ctx, "gwen", "new-password"); err != nil {
			t.Errorf("new password: %v", err)
		}
		a.Gen = gen
	})

	t.Run("log out everywhere else", func(t *testing.T) {
		before := a.Gen
		gen, err := s.NewGeneration(ctx, "gwen")
		if err != nil {
			t.Fatal(err)
		}
		if gen == before || current(before) || !current(gen) {
			t.Errorf("after a new generation: old current %v, new current %v; want false, true", current(before), current(gen))
		}
		if _, err := s.Authenticate(ctx, "gwen", "new-password"); err != nil {
			t.Errorf("the password changed with the generation: %v", err)
		}
	})

	t.Run("no such account", func(t *testing.T) {
		if _, err := setPassword(ctx, s, "nobody", "some-password"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("SetPassword: %v, want ErrBadCredentials", err)
		}
		if _, err := s.NewGeneration(ctx, "nobody"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("NewGeneration: %v, want ErrBadCredentials", err)
		}
		if ok, err := s.Current(ctx, "nobody", "any"); ok || err != nil {
			t.Errorf("Current of no account: %v, %v; want false, nil", ok, err)
		}
	})
}

// setPassword is a password change as the handler makes it: the new
// password hashed first, then stored.
func setPassword(ctx context.Context, s *Store, username, password string) (string, error) {
	p, err := s.HashNewPassword(ctx, password)
	if err != nil {
		return "", err
	}
	return s.SetPassword(ctx, username, p)
}

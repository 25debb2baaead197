package accounts

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Password hashing takes a slot of the store's Hashing gate, so a flood of
// logins (right passwords count against no limit) cannot take every CPU:
// with the slots taken, a check waits at most the gate's wait and is then
// refused with ErrBusy, having checked and changed nothing.
func TestEveryPasswordHashWaitsForAHashingSlot(t *testing.T) {
	s := newStore(t, bcrypt.MinCost)
	ctx := context.Background()
	if _, err := s.Create(ctx, "ada", "ada-password"); err != nil {
		t.Fatal(err)
	}
	before, err := s.Get(ctx, "ada")
	if err != nil {
		t.Fatal(err)
	}
	const wait = 100 * time.Millisecond
	s.Hashing = NewHashing(1, wait)
	_, release, err := s.Hashing.Hold(ctx) // the only slot, as a check in flight holds it
	if err != nil {
		t.Fatal(err)
	}

	ops := []struct {
		name string
		do   func() error
	}{
		{"a login", func() error { _, err := s.Authenticate(ctx, "ada", "ada-password"); return err }},
		{"a wrong password", func() error { _, err := s.Authenticate(ctx, "ada", "not-her-password"); return err }},
		{"an unknown name", func() error { _, err := s.Authenticate(ctx, "nobody", "ada-password"); return err }},
		{"a sign-up", func() error { _, err := s.Create(ctx, "bob", "bob-password"); return err }},
		{"a new password's hash", func() error { _, err := s.HashNewPassword(ctx, "new-ada-password"); return err }},
	}
	for _, op := range ops {
		start := time.Now()
		err := op.do()
		if !errors.Is(err, ErrBusy) {
			t.Errorf("%s with every slot taken: err %v, want ErrBusy", op.name, err)
		}
		if took := time.Since(start); took < wait {
			t.Errorf("%s was refused after %v, before the gate's wait of %v", op.name, took, wait)
		}
	}
	if after, err := s.Get(ctx, "ada"); err != nil || after != before {
		t.Errorf("ada's account after the refused checks: %+v (%v), want it unchanged: %+v", after, err, before)
	}
	if _, err := s.Get(ctx, "bob"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("bob after a refused sign-up: %v, want no account", err)
	}

	// A check that waits gets the slot once it is free.
	done := make(chan error, 1)
	s.Hashing = NewHashing(1, time.Minute)
	held, release2, err := s.Hashing.Hold(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release()
	// The holder's own checks take no second slot.
	if _, err := s.Authenticate(held, "ada", "ada-password"); err != nil {
		t.Errorf("a login under the caller's own slot: %v", err)
	}
	go func() { _, err := s.Authenticate(ctx, "ada", "ada-password"); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("a login ran while the only slot was held (err %v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	release2()
	if err := <-done; err != nil {
		t.Errorf("the login once the slot was free: %v", err)
	}
}

// A client that leaves while its check waits stops waiting.
func TestAWaitForAHashingSlotEndsWithTheRequest(t *testing.T) {
	h := NewHashing(1, time.Minute)
	_, release, err := h.Hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, _, err := h.Hold(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("a wait whose request ended: %v, want context.Canceled", err)
	}
}

package accounts

import (
	"context"
	"errors"
	"runtime"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Every bcrypt hash and comparison takes a slot of the store's Hashing gate.
// A right password counts against no login limit, so without the gate fifty
// correct logins at once from one account took the CPU from everyone else:
// GET /count fell from about 9,000 to 190-310 req/s (docs/security.md).

// ErrBusy is the error of a check that found every hashing slot taken for
// the gate's whole wait: the password was not checked, nothing was changed.
var ErrBusy = errors.New("accounts: every password-hashing slot stayed taken, so the password was not checked")

// DefaultHashWait is how long a check waits for a slot: a class of 150
// logging in at one instant on two CPUs (one slot, about 65 ms a check).
// The login throttle keeps a waiting login's in-flight mark alive
// (throttle.Ticket.KeepInFlight), which would otherwise lapse after 3 s.
const DefaultHashWait = 10 * time.Second

// DefaultHashSlots leaves the other half of the CPUs to everything else
// (with every CPU hashing, the same flood left GET /count 670-780 req/s).
func DefaultHashSlots() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// Hashing bounds the password hashes and comparisons in flight.
type Hashing struct {
	slots chan struct{}
	wait  time.Duration
}

// NewHashing returns a gate of slots slots whose checks wait at most wait.
func NewHashing(slots int, wait time.Duration) *Hashing {
	return &Hashing{slots: make(chan struct{}, max(1, slots)), wait: wait}
}

// heldKey marks a context whose caller holds a slot (Hold).
type heldKey struct{}

// Hold takes a slot for a caller's step of several hashes (a password
// change: the current password's check and the new one's hash), waiting at
// most the gate's wait (ErrBusy) and no longer than ctx. The store's hashing
// under the returned context takes no slot of its own.
func (h *Hashing) Hold(ctx context.Context) (context.Context, func(), error) {
	if ctx.Value(heldKey{}) != nil {
		return ctx, func() {}, nil
	}
	release, err := h.Acquire(ctx)
	if err != nil {
		return ctx, nil, err
	}
	return context.WithValue(ctx, heldKey{}, true), release, nil
}

// Acquire takes a slot, unless ctx holds one already (Hold), waiting at
// most the gate's wait (ErrBusy) and no longer than ctx.
func (h *Hashing) Acquire(ctx context.Context) (release func(), err error) {
	if ctx.Value(heldKey{}) != nil {
		return func() {}, nil
	}
	select {
	case h.slots <- struct{}{}:
		return h.release, nil
	default:
	}
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return h.release, nil
	case <-t.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *Hashing) release() { <-h.slots }

// hash hashes a new password at the store's cost, in a slot.
func (s *Store) hash(ctx context.Context, password string) ([]byte, error) {
	release, err := s.Hashing.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	return bcrypt.GenerateFromPassword([]byte(password), s.cost)
}

package accounts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// NewPassword is a new password, checked and hashed, for SetPassword. A
// change hashes it before it begins (renewing the session's token, ending
// the others), so a change once begun is never refused for want of a
// hashing slot, and no slot is held while it waits on Redis.
type NewPassword struct{ hash []byte }

// HashNewPassword checks a new password and hashes it at the store's cost,
// in a hashing slot (ErrBusy when none came free). Errors: *FieldError for
// a bad password.
func (s *Store) HashNewPassword(ctx context.Context, password string) (NewPassword, error) {
	if err := CheckPassword(password); err != nil {
		return NewPassword{}, err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return NewPassword{}, fmt.Errorf("accounts: hash the new password: %w", err)
	}
	return NewPassword{hash}, nil
}

var errNotHashed = errors.New("accounts: the new password was not hashed (HashNewPassword)")

// SetPassword gives an account a new password and, in the same atomic step, a
// new credential generation, which it returns: a login that read the old hash
// read the old generation too, so it is logged out however its timing fell.
// Errors: ErrBadCredentials for no account.
func (s *Store) SetPassword(ctx context.Context, username string, p NewPassword) (gen string, err error) {
	if p.hash == nil {
		return "", errNotHashed
	}
	gen = newGen()
	n, err := setGen.Exec(ctx, s.rdb, []string{Key(username), CostsKey}, []string{gen, string(p.hash), strconv.Itoa(s.cost)}).AsInt64()
	if err != nil {
		return "", fmt.Errorf("accounts: set password for %q: %w", username, err)
	}
	if n == 0 {
		return "", ErrBadCredentials
	}
	return gen, nil
}

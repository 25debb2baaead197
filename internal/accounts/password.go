package accounts

import (
	"context"
	"fmt"
	"strconv"
)

// SetPassword gives an account a new password and, in the same atomic step, a
// new credential generation, which it returns: a login that read the old hash
// read the old generation too, so it is logged out however its timing fell.
// Errors: *FieldError for a bad password, ErrBadCredentials for no account.
func (s *Store) SetPassword(ctx context.Context, username, password string) (gen string, err error) {
	if err := CheckPassword(password); err != nil {
		return "", err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return "", fmt.Errorf("accounts: hash password for %q: %w", username, err)
	}
	gen = newGen()
	n, err := setGen.Exec(ctx, s.rdb, []string{Key(username), CostsKey}, []string{gen, string(hash), strconv.Itoa(s.cost)}).AsInt64()
	if err != nil {
		return "", fmt.Errorf("accounts: set password for %q: %w", username, err)
	}
	if n == 0 {
		return "", ErrBadCredentials
	}
	return gen, nil
}

package accounts

import (
	"context"
	"fmt"
	"strconv"

	"golang.org/x/crypto/bcrypt"
)

// SetPassword gives an existing account a new password and, in the same
// atomic step, a new credential generation (see NewGeneration), which it
// returns. A login that read the old hash also read the old generation, so
// its session is logged out however its timing fell. It returns a
// *FieldError for a password that breaks the rules and ErrBadCredentials
// when there is no such account.
func (s *Store) SetPassword(ctx context.Context, username, password string) (gen string, err error) {
	if err := CheckPassword(password); err != nil {
		return "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
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

package accounts

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"
	"golang.org/x/crypto/bcrypt"
)

// setHash replaces the hash in an account in place, so nothing else in the
// value (role, created) can be lost to a concurrent write.
var setHash = rueidis.NewLuaScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local a = cjson.decode(raw)
a.hash = ARGV[1]
redis.call('SET', KEYS[1], cjson.encode(a), 'KEEPTTL')
return 1`)

// SetPassword gives an existing account a new password. It returns a
// *FieldError for a password that breaks the rules and ErrBadCredentials
// when there is no such account.
func (s *Store) SetPassword(ctx context.Context, username, password string) error {
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return fmt.Errorf("accounts: hash password for %q: %w", username, err)
	}
	n, err := setHash.Exec(ctx, s.rdb, []string{Key(username)}, []string{string(hash)}).AsInt64()
	if err != nil {
		return fmt.Errorf("accounts: set password for %q: %w", username, err)
	}
	if n == 0 {
		return ErrBadCredentials
	}
	return nil
}

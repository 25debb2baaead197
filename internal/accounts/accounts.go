// Package accounts keeps user accounts in Redis: one JSON value per user at
// user:<name>, created atomically, with a bcrypt password hash.
package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// Key is the Redis key of an account.
func Key(username string) string { return "user:" + username }

// RoleStudent is the role every account gets, as in the tutorial.
const RoleStudent = "student"

// Account is what is stored at user:<name>.
type Account struct {
	Username string    `json:"username"`
	Role     string    `json:"role"`
	Hash     string    `json:"hash"`
	Created  time.Time `json:"created"`
	Gen      string    `json:"gen,omitempty"` // credential generation, see NewGeneration
}

var (
	// ErrTaken means the username belongs to another account.
	ErrTaken = errors.New("accounts: username taken")
	// ErrBadCredentials covers unknown user and wrong password alike, so
	// callers cannot tell (and show) which one it was.
	ErrBadCredentials = errors.New("accounts: invalid username or password")
	// ErrUnreadable means the account's key holds something this app did
	// not write (a change by hand with redis-cli): no login to it can be
	// checked until it holds an account again.
	ErrUnreadable = errors.New("accounts: the stored account cannot be read")
)

// unreadable reports whether err from reading an account's key means that
// the key holds something else than an account: another type of value.
func unreadable(err error) bool {
	re, ok := rueidis.IsRedisErr(err)
	return ok && strings.HasPrefix(re.Error(), "WRONGTYPE")
}

// FieldError is input that breaks a rule, named by its form field.
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Limits on input; bcrypt reads at most 72 bytes of a password. Pages and
// messages name these constants, never the numbers.
const (
	UsernameMin, UsernameMax = 3, 32
	PasswordMin, PasswordMax = 8, 72
)

// NormalizeUsername case-folds a username and checks it is 3–32 characters
// of a-z, 0-9, _ and -.
func NormalizeUsername(s string) (string, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	if name == "" {
		return "", &FieldError{"username", "Enter a username."}
	}
	if len(name) < UsernameMin || len(name) > UsernameMax {
		return "", &FieldError{"username", fmt.Sprintf("Use %d to %d characters.", UsernameMin, UsernameMax)}
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return "", &FieldError{"username", "Use only letters, digits, _ and -."}
		}
	}
	return name, nil
}

// CheckPassword enforces the password length rules.
func CheckPassword(p string) error {
	switch {
	case p == "":
		return &FieldError{"password", "Enter a password."}
	case len(p) < PasswordMin:
		return &FieldError{"password", fmt.Sprintf("Use at least %d characters.", PasswordMin)}
	case len(p) > PasswordMax:
		return &FieldError{"password", fmt.Sprintf("Use at most %d bytes (bcrypt ignores the rest).", PasswordMax)}
	}
	return nil
}

// CheckNew checks a new account's input and returns the normalized username;
// the error joins a *FieldError per wrong field, for the form to show all.
func CheckNew(username, password string) (string, error) {
	name, uerr := NormalizeUsername(username)
	if err := errors.Join(uerr, CheckPassword(password)); err != nil {
		return "", err
	}
	return name, nil
}

// Store reads and writes accounts.
type Store struct {
	Log *slog.Logger // optional: says when a hand edit made CostsKey unreadable
	// Hashing bounds the bcrypt work in flight (hashing.go); New sets the
	// defaults.
	Hashing *Hashing

	rdb     rueidis.Client
	cost    int
	dummies dummies // hashes compared against for unknown users, to even out timing (cost.go)

	gens       sync.Map     // username -> decodedGen (see generation)
	gensStored atomic.Int64 // stores into gens since it was last cleared
}

// New returns a Store hashing with the given bcrypt cost.
func New(rdb rueidis.Client, cost int) *Store {
	s := &Store{rdb: rdb, cost: cost, Hashing: NewHashing(DefaultHashSlots(), DefaultHashWait)}
	s.dummies.at(cost) // made now, not in the first login
	return s
}

// create stores a new account unless the name is taken, counting its hash's
// cost. KEYS: account, CostsKey; ARGV: the account, its hash's cost.
var create = redistrace.NewScript("create account", countCost+`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX') then return 0 end
count_cost(ARGV[2], 1)
return 1`)

// Create stores a new account. SET NX makes it atomic: of two concurrent
// sign-ups for one name exactly one succeeds, the other gets ErrTaken.
func (s *Store) Create(ctx context.Context, username, password string) (Account, error) {
	name, err := CheckNew(username, password)
	if err != nil {
		return Account{}, err
	}
	hash, err := s.hash(ctx, password)
	if err != nil {
		return Account{}, fmt.Errorf("accounts: hash password for %q: %w", name, err)
	}
	a := Account{Username: name, Role: RoleStudent, Hash: string(hash), Created: time.Now().UTC().Truncate(time.Second), Gen: newGen()}
	b, _ := json.Marshal(a)
	n, err := create.Exec(ctx, s.rdb, []string{Key(name), CostsKey}, []string{string(b), strconv.Itoa(s.cost)}).AsInt64()
	if err != nil {
		return Account{}, fmt.Errorf("accounts: create %q: %w", name, err)
	}
	if n == 0 {
		return Account{}, ErrTaken
	}
	return a, nil
}

// Get returns an account, or ErrBadCredentials when there is none.
func (s *Store) Get(ctx context.Context, username string) (Account, error) {
	b, err := s.rdb.Do(ctx, s.rdb.B().Get().Key(Key(username)).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return Account{}, ErrBadCredentials
	}
	if unreadable(err) {
		return Account{}, fmt.Errorf("accounts: get %q: %w (%v)", username, ErrUnreadable, err)
	}
	if err != nil {
		return Account{}, fmt.Errorf("accounts: get %q: %w", username, err)
	}
	var a Account
	if err := json.Unmarshal(b, &a); err != nil {
		return Account{}, fmt.Errorf("accounts: decode %q: %w (%v)", username, ErrUnreadable, err)
	}
	return a, nil
}

// Authenticate checks a username and password, in the same time whether the
// name exists or not (cost.go), rehashing a hash of an older cost.
func (s *Store) Authenticate(ctx context.Context, username, password string) (Account, error) {
	top, err := s.topCost(ctx)
	if err != nil {
		return Account{}, err
	}
	name, nameErr := NormalizeUsername(username)
	var a Account
	if nameErr == nil {
		a, err = s.Get(ctx, name)
		if err != nil && !errors.Is(err, ErrBadCredentials) && !errors.Is(err, ErrUnreadable) {
			return Account{}, err
		}
	}
	hash := string(s.dummies.at(top))
	if nameErr == nil && err == nil {
		hash = a.Hash
	}
	// The slot for the comparison alone: Redis calls hold none, so a hung
	// Redis fails every waiting login at its own time, not one after another.
	release, herr := s.Hashing.Acquire(ctx)
	if herr != nil {
		return Account{}, fmt.Errorf("accounts: check password: %w", herr)
	}
	cerr := s.compare(hash, []byte(password), top)
	release()
	if cerr != nil || nameErr != nil || err != nil {
		if errors.Is(err, ErrUnreadable) {
			return Account{}, err // said whatever the password: no password can be checked
		}
		return Account{}, ErrBadCredentials
	}
	// The login is good even if this fails: the next one rehashes.
	_ = s.upgrade(ctx, a, password)
	return a, nil
}

// Package sessions holds what sessionlab keeps about a session in Redis: the
// JSON codec scs writes with, the key names, and the few atomic operations
// that change a stored session in place instead of rewriting it.
package sessions

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/gomodule/redigo/redis"
	"github.com/redis/rueidis"
)

// Prefix is the key prefix of stored sessions: sess:<token>, as in the tutorial.
const Prefix = "sess:"

// Key is the Redis key of a session token.
func Key(token string) string { return Prefix + token }

// NewPool returns the redigo pool that scs/redisstore needs. Timeouts are
// short so a Redis outage turns into an error within a second or two instead
// of a hung request; TestOnBorrow drops connections that died while idle
// (for example across a Redis restart).
func NewPool(redisURL string) *redis.Pool {
	return &redis.Pool{
		MaxIdle:     64,
		IdleTimeout: 4 * time.Minute,
		Dial: func() (redis.Conn, error) {
			return redis.DialURL(redisURL,
				redis.DialConnectTimeout(time.Second),
				redis.DialReadTimeout(2*time.Second),
				redis.DialWriteTimeout(time.Second),
			)
		},
		TestOnBorrow: func(c redis.Conn, idleSince time.Time) error {
			if time.Since(idleSince) < 5*time.Second {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}
}

// Ops changes stored sessions atomically, with one round trip each, so
// concurrent requests of one session (on any instance) never lose an update.
type Ops struct {
	rdb rueidis.Client
}

// NewOps returns Ops over a rueidis client.
func NewOps(rdb rueidis.Client) *Ops { return &Ops{rdb: rdb} }

// ErrNoSession means the session's key is gone (expired, revoked, renewed).
var ErrNoSession = errors.New("sessions: no such session")

// incrViews is the tutorial's `req.session.views = (req.session.views || 0) + 1`
// done inside Redis: read, add one and write back in one atomic step, keeping
// the key's TTL. A lost update is impossible because no other command can run
// between the read and the write.
var incrViews = rueidis.NewLuaScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local s = cjson.decode(raw)
local v = (tonumber(s.values.views) or 0) + 1
s.values.views = v
redis.call('SET', KEYS[1], cjson.encode(s), 'KEEPTTL')
return v`)

// IncrViews adds one view to a stored session and returns the new count.
func (o *Ops) IncrViews(ctx context.Context, token string) (int, error) {
	n, err := incrViews.Exec(ctx, o.rdb, []string{Key(token)}, nil).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0, ErrNoSession
	}
	if err != nil {
		return 0, fmt.Errorf("sessions: incr views: %w", err)
	}
	return int(n), nil
}

// touch records activity and moves the key's expiry to the new idle
// deadline, without rewriting what other requests may be changing.
var touch = rueidis.NewLuaScript(`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local s = cjson.decode(raw)
s.values.seen = ARGV[1]
redis.call('SET', KEYS[1], cjson.encode(s), 'PXAT', ARGV[2])
return 1`)

// Touch sets the session's last-seen time and its key's expiry.
func (o *Ops) Touch(ctx context.Context, token string, seen, expiry time.Time) error {
	n, err := touch.Exec(ctx, o.rdb, []string{Key(token)},
		[]string{seen.UTC().Format(timeFormat), strconv.FormatInt(expiry.UnixMilli(), 10)}).AsInt64()
	if err != nil {
		return fmt.Errorf("sessions: touch: %w", err)
	}
	if n == 0 {
		return ErrNoSession
	}
	return nil
}

// Take atomically reads and deletes a stored session (GETDEL). Renewing a
// token with it carries over every update made to the old key up to the
// moment it disappears, instead of the copy the request loaded earlier.
func (o *Ops) Take(ctx context.Context, token string) ([]byte, error) {
	b, err := o.rdb.Do(ctx, o.rdb.B().Getdel().Key(Key(token)).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("sessions: take: %w", err)
	}
	return b, nil
}

// LogID is a short salted hash of a token: enough to follow one session
// through the logs, useless for taking it over.
type LogID []byte

// Of returns the log id of a token ("-" for none).
func (salt LogID) Of(token string) string {
	if token == "" {
		return "-"
	}
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil)[:6])
}

// IdleStore caps the expiry of every session write at now+idle, so Redis
// drops an idle session by itself. scs's own IdleTimeout would do the same
// but rewrites the whole session on every request; here only writes that
// happen anyway (and Ops.Touch) move the expiry.
type IdleStore struct {
	scs.Store
	Idle time.Duration
}

// Commit implements scs.Store.
func (s IdleStore) Commit(token string, b []byte, expiry time.Time) error {
	if ie := time.Now().Add(s.Idle); s.Idle > 0 && ie.Before(expiry) {
		expiry = ie
	}
	return s.Store.Commit(token, b, expiry)
}

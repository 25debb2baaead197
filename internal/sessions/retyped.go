package sessions

import (
	"context"
	"log/slog"
	"strings"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// retype: KEYS[1] a key, ARGV[1] the type the app writes there. A key
// holding another type is deleted and its type returned, else the empty
// string.
var retype = redistrace.NewScript("reset a key of another type", `
local t = redis.call('TYPE', KEYS[1]).ok
if t == ARGV[1] or t == 'none' then return '' end
redis.call('DEL', KEYS[1])
return t`)

// IsWrongType says whether err is Redis's WRONGTYPE: a command met a key
// holding another type of value than it works on.
func IsWrongType(err error) bool {
	return err != nil && strings.Contains(err.Error(), "WRONGTYPE")
}

// ResetRetyped runs after a call that failed with err: when err is
// WRONGTYPE, each of keys (the app's own hashes, whose content it can
// start again: a user's session index, its revoked ids) that holds another
// type of value (SET over it with redis-cli) is deleted, with a WARN, and
// it says so: the caller then makes the call again. The scripts that call
// on these keys fail before their first write (touch's, the same again, is
// the exception), so the call again is the only one that counts. Nothing
// else is touched.
func ResetRetyped(ctx context.Context, rdb rueidis.Client, log *slog.Logger, err error, keys ...string) bool {
	if !IsWrongType(err) {
		return false
	}
	reset := false
	for _, k := range keys {
		was, rerr := retype.Exec(ctx, rdb, []string{k}, []string{"hash"}).ToString()
		if rerr != nil || was == "" {
			continue
		}
		if log == nil {
			log = slog.Default()
		}
		log.WarnContext(ctx, "a key of another type than the app writes was deleted and starts again", "key", k, "was", was, "err", err)
		reset = true
	}
	return reset
}

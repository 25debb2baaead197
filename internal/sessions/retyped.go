package sessions

import (
	"context"
	"log/slog"
	"strings"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// retype: KEYS[1] a key the app writes as a hash. A key holding another
// type (HLEN answers WRONGTYPE) is deleted: 1; else 0. (No TYPE: the
// documented ACL user need not have it.)
var retype = redistrace.NewScript("reset a key of another type", `
local r = redis.pcall('HLEN', KEYS[1])
if type(r) == 'table' and r.err and string.find(r.err, 'WRONGTYPE', 1, true) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`)

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
		n, rerr := retype.Exec(ctx, rdb, []string{k}, nil).AsInt64()
		if rerr != nil || n == 0 {
			continue
		}
		if log == nil {
			log = slog.Default()
		}
		log.WarnContext(ctx, "a key of another type than the app writes was deleted and starts again", "key", k, "err", err)
		reset = true
	}
	return reset
}

package sessions

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// RenewedFor is how long a renewed token is remembered, with its count:
// answers to requests sent just before a login must not overwrite its cookie.
const RenewedFor = time.Minute

// RenewalInFlight is how long after a renewal a request may still carry the
// old token because it was sent before the renewal's answer arrived (a second
// tab, a form sent twice); every request answers within its Redis budget and
// a dial, so this is generous. A browser that still sends the old token
// later never got the new one (the answer carrying it was lost: a 503 after
// Redis had run the renewal), so no reload can help it.
const RenewalInFlight = 10 * time.Second

// RenewedKey is the marker of a renewed token, named by ID, never by token.
func RenewedKey(token string) string { return "renewed:" + ID(token) }

// Renewed reports whether token was renewed within RenewedFor, and the count
// it carried, for a double-clicked login to start from.
func (o *Ops) Renewed(ctx context.Context, token string) (views int, renewed bool, err error) {
	n, err := o.rdb.Do(ctx, o.rdb.B().Get().Key(RenewedKey(token)).Build()).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("sessions: renewed: %w", err)
	}
	return int(n), true, nil
}

// RenewedInFlight reports whether token was renewed within RenewalInFlight:
// a request carrying it may have been sent before the renewal's answer
// arrived, and its browser holds the new token by now. One PTTL.
func (o *Ops) RenewedInFlight(ctx context.Context, token string) (bool, error) {
	ms, err := o.rdb.Do(ctx, o.rdb.B().Pttl().Key(RenewedKey(token)).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("sessions: renewed in flight: %w", err)
	}
	return ms > (RenewedFor - RenewalInFlight).Milliseconds(), nil // -2: no marker
}

// LoggedOutKey is the marker of a token a logout ended (EndUnlessRenewed),
// by ID; under renewed: for the documented ACL user, as ReplacedKey.
func LoggedOutKey(token string) string { return "renewed:out:" + ID(token) }

// Kept is what KeepUnlessMoved found of a session written under its loaded
// token.
type Kept int

const (
	// KeptAsWritten: nothing took the token; the write stands.
	KeptAsWritten Kept = iota
	// KeptUndone: a renewal took the token before the write, which revived
	// the ID; the write is deleted, and the session lives on, without it,
	// under the renewal's token.
	KeptUndone
	// KeptCarried: a renewal took the token after the write, and carried it
	// on under its new token (Take); the old ID is dead.
	KeptCarried
	// KeptEnded: a logout ended the session, before or after the write; the
	// write is deleted.
	KeptEnded
)

// keepUnlessMoved: KEYS[1] a session just written, KEYS[2] its renewed
// marker, KEYS[3] its logged-out marker.
var keepUnlessMoved = redistrace.NewScript("keep unless moved", `
local renewed = redis.call('EXISTS', KEYS[2]) == 1
if not renewed and redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
local written = redis.call('DEL', KEYS[1]) == 1
if not renewed then return 3 end
if written then return 1 end
return 2`)

// KeepUnlessMoved runs after a session is written under the token its
// request loaded (a login that kept its token, -lab). scs writes with a
// plain SET, so a renewal (Take) or a logout (EndUnlessRenewed) of that
// token since the request loaded it would be undone by the write, bringing
// the old ID back to life, possibly logged in, in a browser that held a
// copy: then the write is deleted. The markers both leave say which.
func (o *Ops) KeepUnlessMoved(ctx context.Context, token string) (Kept, error) {
	n, err := keepUnlessMoved.Exec(ctx, o.rdb, []string{Key(token), RenewedKey(token), LoggedOutKey(token)}, nil).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("sessions: keep unless moved: %w", err)
	}
	return Kept(n), nil
}

// endUnlessRenewed deletes KEYS[1] (a session a logout ends) and marks it
// logged out (KEYS[3], ARGV[1] ms); when it was gone already and KEYS[2]
// (its renewed marker) is set, it answers RENEWED.
var endUnlessRenewed = redistrace.NewScript("end (DEL)", `
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('SET', KEYS[3], 1, 'PX', ARGV[1])
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.status_reply('RENEWED')
end
return redis.status_reply('OK')`)

// EndUnlessRenewed deletes a session's key for a logout, in one step with
// the check that no renewal (Take) took it first: then the session lives on
// under a new token, which this logout has not ended, and the error is
// ErrTokenRenewed. A key gone for any other reason (expired, revoked) is
// ended: nil. It marks the token logged out for RenewedFor, so a login that
// kept the token and writes it after this cannot revive it (KeepUnlessMoved).
func (o *Ops) EndUnlessRenewed(ctx context.Context, token string) error {
	s, err := endUnlessRenewed.Exec(ctx, o.rdb, []string{Key(token), RenewedKey(token), LoggedOutKey(token)},
		[]string{strconv.FormatInt(RenewedFor.Milliseconds(), 10)}).ToString()
	if err != nil {
		return fmt.Errorf("sessions: end: %w", err)
	}
	if s == "RENEWED" {
		return ErrTokenRenewed
	}
	return nil
}

// ReplacedKey is the marker of an ended session's token that a new session
// replaced in its browser (a login or a count with its cookie), by ID. It is
// under renewed: so the documented ACL user (docs/deploy.md) may use it.
func ReplacedKey(token string) string { return "renewed:ended:" + ID(token) }

// MarkReplaced records that a new session replaced token, whose session had
// ended, in its browser: answers to that browser's requests sent before must
// not expire the new cookie (see Replaced). Unlike a renewal it changes
// nothing else: such a request may still start a session of its own.
func (o *Ops) MarkReplaced(ctx context.Context, token string) error {
	err := o.rdb.Do(ctx, o.rdb.B().Set().Key(ReplacedKey(token)).Value("1").Px(RenewedFor).Build()).Error()
	if err != nil {
		return fmt.Errorf("sessions: mark replaced: %w", err)
	}
	return nil
}

// Replaced reports whether token's cookie may have been replaced in its
// browser within RenewedFor: by a renewal (Take) or a new session
// (MarkReplaced). One EXISTS for both markers.
func (o *Ops) Replaced(ctx context.Context, token string) (bool, error) {
	n, err := o.rdb.Do(ctx, o.rdb.B().Exists().Key(RenewedKey(token), ReplacedKey(token)).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("sessions: replaced: %w", err)
	}
	return n > 0, nil
}

// UnreadableFor is how long a session logged out for its account's unreadable
// value is remembered as such: its cookie stays until a page says why (a
// request that cannot, such as the Redis panel's, may have ended it), and a
// student may come back to the page a while later.
const UnreadableFor = time.Hour

// AccountUnreadableKey is the marker of a token whose session was logged out
// because its account's stored value could not be read, by ID; under
// renewed: for the documented ACL user, as ReplacedKey.
func AccountUnreadableKey(token string) string { return "renewed:account:" + ID(token) }

// MarkAccountUnreadable records that token's session was logged out because
// the account at accountKey could not be read, for the page that later says
// why (AccountUnreadable).
func (o *Ops) MarkAccountUnreadable(ctx context.Context, token, accountKey string) error {
	err := o.rdb.Do(ctx, o.rdb.B().Set().Key(AccountUnreadableKey(token)).Value(accountKey).Px(UnreadableFor).Build()).Error()
	if err != nil {
		return fmt.Errorf("sessions: mark account unreadable: %w", err)
	}
	return nil
}

// AccountUnreadable is the account key MarkAccountUnreadable recorded for
// token within UnreadableFor, or "".
func (o *Ops) AccountUnreadable(ctx context.Context, token string) (string, error) {
	key, err := o.rdb.Do(ctx, o.rdb.B().Get().Key(AccountUnreadableKey(token)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("sessions: account unreadable: %w", err)
	}
	return key, nil
}

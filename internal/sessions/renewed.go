package sessions

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// RenewedFor is how long a renewed token is remembered as renewed.
//
// When a login gives a session a new token, requests the browser sent just
// before still carry the old one. The answers to those must not set a
// session cookie (neither a new anonymous session nor a deletion): the
// browser would store it over the new one and the login would be lost. The
// marker tells "renewed a moment ago" apart from "expired or never issued",
// where starting a new session is right. A minute outlasts any request.
// The marker holds the view count the token carried.
const RenewedFor = time.Minute

// RenewedKey is the marker of a renewed token, named by ID, never by token.
func RenewedKey(token string) string { return "renewed:" + ID(token) }

// Renewed reports whether token was renewed within RenewedFor (by Take),
// and the view count it carried to its new token: a second login sent with
// the same old cookie (a double click) starts from that count.
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

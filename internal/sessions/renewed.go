package sessions

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// RenewedFor is how long a renewed token is remembered as renewed (holding
// the count it carried): requests sent just before a login still carry the
// old token, and a cookie in their answers would overwrite the login's. A
// minute outlasts any request.
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

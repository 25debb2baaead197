package sessions

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/rueidis"
)

// RenewedFor is how long a renewed token is remembered, with its count:
// answers to requests sent just before a login must not overwrite its cookie.
const RenewedFor = time.Minute

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

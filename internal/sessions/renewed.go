package sessions

import (
	"context"
	"fmt"
	"time"
)

// RenewedFor is how long a renewed token is remembered as renewed.
//
// When a login gives a session a new token, requests the browser sent just
// before still carry the old one. The answers to those must not set a
// session cookie (neither a new anonymous session nor a deletion): the
// browser would store it over the new one and the login would be lost. The
// marker tells "renewed a moment ago" apart from "expired or never issued",
// where starting a new session is right. A minute outlasts any request.
const RenewedFor = time.Minute

// RenewedKey is the marker of a renewed token, named by ID, never by token.
func RenewedKey(token string) string { return "renewed:" + ID(token) }

// MarkRenewed records that token is being replaced. It is called before
// the old key is taken, so no request can find the key gone and the marker
// not yet there.
func (o *Ops) MarkRenewed(ctx context.Context, token string) error {
	err := o.rdb.Do(ctx, o.rdb.B().Set().Key(RenewedKey(token)).Value("1").
		Px(RenewedFor).Build()).Error()
	if err != nil {
		return fmt.Errorf("sessions: mark renewed: %w", err)
	}
	return nil
}

// Renewed reports whether token was renewed within RenewedFor.
func (o *Ops) Renewed(ctx context.Context, token string) (bool, error) {
	n, err := o.rdb.Do(ctx, o.rdb.B().Exists().Key(RenewedKey(token)).Build()).AsInt64()
	if err != nil {
		return false, fmt.Errorf("sessions: renewed: %w", err)
	}
	return n > 0, nil
}

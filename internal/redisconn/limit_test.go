package redisconn

import (
	"context"
	"testing"
	"time"
)

// A session store call's limit reaches the pool's borrow from the call's own
// context (limitedCtx, read without boxing) and from any context derived
// from it, as a context.WithValue's would.
func TestLimitOfAStoreCall(t *testing.T) {
	lim := time.Now().Add(time.Second)
	type (
		otherKey   struct{}
		derivedKey struct{}
	)
	call := &limitedCtx{Context: context.WithValue(context.Background(), otherKey{}, "below"), limit: lim}
	derived, cancel := context.WithCancel(call)
	defer cancel()
	for name, ctx := range map[string]context.Context{
		"the call's":            call,
		"derived, with a value": context.WithValue(call, derivedKey{}, 1),
		"derived, cancellable":  derived,
		"context.WithValue":     context.WithValue(context.Background(), limitKey{}, lim),
	} {
		if got := limitOf(ctx); !got.Equal(lim) {
			t.Errorf("%s: limit %v, want %v", name, got, lim)
		}
		if got := ctx.Value(otherKey{}); name != "context.WithValue" && got != "below" {
			t.Errorf("%s: the call's context's own value %v", name, got)
		}
	}
	if got := limitOf(context.Background()); !got.IsZero() {
		t.Errorf("no limit: %v", got)
	}
}

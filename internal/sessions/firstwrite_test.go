package sessions

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// A new session's first write rides with the script that counts it: scs
// commits into WithCapture (nothing is sent), NewBrowser writes those bytes
// with their expiry, and the save's commit under WithWritten sends nothing
// for the same bytes, and writes any others.
func TestANewSessionIsWrittenByItsFirstCount(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	rdb := rs.Client(t)
	pool, err := redisconn.NewPool(redisconn.Config{URL: "redis://" + rs.Addr() + "/0"}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	sm := scs.New()
	sm.Codec = Codec{}
	sm.Store = IdleStore{Store: redisconn.NewSessionStore(pool, Prefix), Idle: time.Hour}
	o := NewOps(rdb)
	v := Visit{Addr: "192.0.2.30", Device: "Firefox on Linux"}
	stored := func(token string) (string, time.Duration) {
		t.Helper()
		b, err := rdb.Do(context.Background(), rdb.B().Get().Key(Key(token)).Build()).ToString()
		if err != nil {
			return "", 0
		}
		ttl, _ := rdb.Do(context.Background(), rdb.B().Pttl().Key(Key(token)).Build()).AsInt64()
		return b, time.Duration(ttl) * time.Millisecond
	}
	// newSession is a request's new session with a count, captured as its
	// save would write it, with the new-session idle timeout.
	newSession := func(t *testing.T) (context.Context, *Written) {
		t.Helper()
		ctx, err := sm.Load(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		sm.Put(ctx, KeyViews, 1)
		if err := sm.RenewToken(ctx); err != nil {
			t.Fatal(err)
		}
		cctx, w := WithCapture(WithIdle(ctx, FreshFor))
		if _, _, err := sm.Commit(cctx); err != nil {
			t.Fatal(err)
		}
		if w.Token != sm.Token(ctx) || len(w.Value) == 0 {
			t.Fatalf("captured %+v, want the session of %s", w, sm.Token(ctx))
		}
		if b, _ := stored(w.Token); b != "" {
			t.Fatalf("the capture sent the session to Redis: %s", b)
		}
		return ctx, w
	}

	t.Run("the script writes what the save would, with the new session's short life", func(t *testing.T) {
		ctx, w := newSession(t)
		before := time.Now()
		if _, wait, err := o.NewBrowser(ctx, w.Token, 1, v, throttle.Step{}, w); err != nil || wait != 0 {
			t.Fatal(wait, err)
		}
		b, ttl := stored(w.Token)
		if b != string(w.Value) {
			t.Fatalf("stored %q, want %q", b, w.Value)
		}
		if ttl > FreshFor || ttl < FreshFor-time.Since(before)-time.Second {
			t.Errorf("the key lives %s, want %s", ttl, FreshFor)
		}
		if d, values, err := (Codec{}).Decode([]byte(b)); err != nil || values[KeyViews] != 1 || !d.Equal(sm.Deadline(ctx).Truncate(time.Millisecond)) {
			t.Errorf("stored session decodes to %v %v %v", d, values, err)
		}

		// The save of the same bytes sends nothing: a value put in Redis
		// meanwhile stays.
		rs.MustDo("SET", Key(w.Token), "meanwhile", "KEEPTTL")
		if _, _, err := sm.Commit(WithWritten(WithIdle(ctx, FreshFor), w)); err != nil {
			t.Fatal(err)
		}
		if b, _ := stored(w.Token); b != "meanwhile" {
			t.Errorf("the save of the bytes the script wrote sent them again: %q", b)
		}
		// A value changed after the script wrote it is saved.
		sm.Put(ctx, KeyViews, 7)
		if _, _, err := sm.Commit(WithWritten(WithIdle(ctx, FreshFor), w)); err != nil {
			t.Fatal(err)
		}
		if b, _ := stored(w.Token); b == "meanwhile" || b == string(w.Value) {
			t.Errorf("a session changed after the script wrote it was not saved: %q", b)
		} else if _, values, err := (Codec{}).Decode([]byte(b)); err != nil || values[KeyViews] != 7 {
			t.Errorf("saved %q: %v %v", b, values, err)
		}
	})

	t.Run("past the limit nothing is written: no session, no row", func(t *testing.T) {
		limit := throttle.Step{Key: "newsession:test:" + strconv.Itoa(int(time.Now().UnixNano())), Limit: throttle.Limit{Max: 1, Window: time.Hour}}
		ctx, w := newSession(t)
		if _, wait, err := o.NewBrowser(ctx, w.Token, 1, v, limit, w); err != nil || wait != 0 {
			t.Fatal(wait, err)
		}
		if b, _ := stored(w.Token); b != string(w.Value) {
			t.Fatalf("within the limit: stored %q", b)
		}
		ctx, w = newSession(t)
		_, wait, err := o.NewBrowser(ctx, w.Token, 1, v, limit, w)
		if err != nil || wait <= 0 {
			t.Fatalf("past the limit: wait %s, err %v", wait, err)
		}
		if b, _ := stored(w.Token); b != "" {
			t.Errorf("a refused session was stored: %q", b)
		}
		if n := rs.MustDo("HEXISTS", BrowsersKey(v.Addr), ID(w.Token)); n != "0" {
			t.Error("a refused session was listed")
		}
	})

	t.Run("a value not captured, or another token's, is refused and writes nothing", func(t *testing.T) {
		ctx, w := newSession(t)
		for _, bad := range []*Written{{Token: w.Token, Value: []byte("x"), capture: true}, {Token: "another", Value: w.Value, Expiry: w.Expiry}} {
			if _, _, err := o.NewBrowser(ctx, w.Token, 1, v, throttle.Step{}, bad); err == nil {
				t.Errorf("NewBrowser wrote %+v", bad)
			}
		}
		if b, _ := stored(w.Token); b != "" {
			t.Errorf("stored %q", b)
		}
	})
}

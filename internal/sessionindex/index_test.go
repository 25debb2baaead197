package sessionindex

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessions"
)

func newIndex(t *testing.T) (*Index, rueidis.Client) {
	t.Helper()
	rs := redistest.Start(t)
	rdb := rs.Client(t)
	return New(rdb), rdb
}

// session stores a session key for token (as scs would) and returns an
// index entry for it created at created.
func session(t *testing.T, rdb rueidis.Client, token string, created time.Time) Entry {
	t.Helper()
	err := rdb.Do(context.Background(), rdb.B().Set().Key(sessions.Key(token)).Value(`{"deadline":"2099-01-01T00:00:00.000Z","values":{}}`).Ex(time.Hour).Build()).Error()
	if err != nil {
		t.Fatal(err)
	}
	return Entry{Token: token, Created: created.UnixMilli(), LastSeen: created.UnixMilli(), IP: "127.0.0.1", Instance: "a"}
}

func hlen(t *testing.T, rdb rueidis.Client, user string) int64 {
	t.Helper()
	n, err := rdb.Do(context.Background(), rdb.B().Hlen().Key(sessions.IndexKey(user)).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func del(t *testing.T, rdb rueidis.Client, token string) {
	t.Helper()
	if err := rdb.Do(context.Background(), rdb.B().Del().Key(sessions.Key(token)).Build()).Error(); err != nil {
		t.Fatal(err)
	}
}

// The index does not grow without bound: entries of sessions whose key is
// gone (expired, revoked, renewed) are dropped on the next login or listing,
// so it holds at most the live sessions (plus logins of the last moments).
func TestIndexDropsEndedSessions(t *testing.T) {
	ctx := context.Background()
	x, rdb := newIndex(t)
	old := time.Now().Add(-time.Hour)
	deadline := time.Now().Add(24 * time.Hour)
	const n = 200
	for i := range n {
		tok := fmt.Sprintf("token-%03d", i)
		if err := x.Add(ctx, "alice", session(t, rdb, tok, old), "", deadline); err != nil {
			t.Fatal(err)
		}
		if i%10 != 0 {
			del(t, rdb, tok) // it expired
		}
	}
	// Every Add pruned the entries before it: only the live ones remain.
	if got := hlen(t, rdb, "alice"); got > n/10+1 {
		t.Errorf("after %d logins, %d still live, the index holds %d entries", n, n/10, got)
	}
	list, err := x.List(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n/10 {
		t.Errorf("List = %d sessions, want %d", len(list), n/10)
	}
	// All of them end: listing empties the index.
	for i := 0; i < n; i += 10 {
		del(t, rdb, fmt.Sprintf("token-%03d", i))
	}
	if list, _ := x.List(ctx, "alice"); len(list) != 0 {
		t.Errorf("List after every session ended = %d, want 0", len(list))
	}
	if got := hlen(t, rdb, "alice"); got != 0 {
		t.Errorf("index holds %d entries after every session ended, want 0", got)
	}
}

// A login writes its entry before its session key (that is written when
// the response is committed): a listing in between keeps the entry, even
// when the session itself started long before (an anonymous session that
// logs in keeps its start).
func TestIndexKeepsAnEntryWhoseKeyIsAboutToBeWritten(t *testing.T) {
	ctx := context.Background()
	x, _ := newIndex(t)
	e := Entry{Token: "not-yet-committed", Created: time.Now().Add(-time.Hour).UnixMilli(), LastSeen: time.Now().UnixMilli()}
	if err := x.Add(ctx, "alice", e, "", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if list, _ := x.List(ctx, "alice"); len(list) != 1 {
		t.Errorf("List = %d entries, want the new one", len(list))
	}
}

// The index hash expires with the longest session in it.
func TestIndexExpiresWithItsLongestSession(t *testing.T) {
	ctx := context.Background()
	x, rdb := newIndex(t)
	now := time.Now()
	expireAt := func() time.Time {
		ms, err := rdb.Do(ctx, rdb.B().Pexpiretime().Key(sessions.IndexKey("alice")).Build()).AsInt64()
		if err != nil {
			t.Fatal(err)
		}
		return time.UnixMilli(ms)
	}
	steps := []struct {
		name     string
		deadline time.Time
		want     time.Time
	}{
		{"first session sets it", now.Add(2 * time.Hour), now.Add(2 * time.Hour)},
		{"a shorter one leaves it", now.Add(time.Hour), now.Add(2 * time.Hour)},
		{"a longer one moves it", now.Add(3 * time.Hour), now.Add(3 * time.Hour)},
	}
	for i, s := range steps {
		e := session(t, rdb, fmt.Sprintf("token-%d", i), now)
		if err := x.Add(ctx, "alice", e, "", s.deadline); err != nil {
			t.Fatal(err)
		}
		if got := expireAt(); !got.Equal(s.want.Truncate(time.Millisecond)) {
			t.Errorf("%s: index expires at %v, want %v", s.name, got, s.want)
		}
	}
}

// Revoke deletes the session's key and its entry, and tells its pages.
func TestRevokeDeletesTheKeyAndTellsThePage(t *testing.T) {
	ctx := context.Background()
	x, rdb := newIndex(t)
	keep := session(t, rdb, "keep", time.Now())
	gone := session(t, rdb, "gone", time.Now())
	for _, e := range []Entry{keep, gone} {
		if err := x.Add(ctx, "alice", e, "", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan string, 1)
	sub := rdb.B().Subscribe().Channel(sessions.SessionChannel(sessions.ID("gone"))).Build()
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan struct{})
	go func() {
		_ = rdb.Receive(subCtx, sub, func(m rueidis.PubSubMessage) { got <- m.Message })
	}()
	// Wait for the subscription to exist.
	go func() {
		for subCtx.Err() == nil {
			n, _ := rdb.Do(ctx, rdb.B().PubsubNumsub().Channel(sessions.SessionChannel(sessions.ID("gone"))).Build()).AsIntMap()
			if n[sessions.SessionChannel(sessions.ID("gone"))] > 0 {
				close(ready)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	<-ready

	for _, tt := range []struct {
		user, id string
		want     bool
	}{
		{"mallory", sessions.ID("gone"), false}, // not mallory's session
		{"alice", "*", false},
		{"alice", sessions.ID("gone"), true},
		{"alice", sessions.ID("gone"), false}, // already gone
	} {
		r, err := x.Revoke(ctx, tt.user, tt.id)
		if err != nil || (r.Live > 0) != tt.want || len(r.Removed) != r.Live {
			t.Errorf("Revoke(%s, %s) = %+v, %v; want a live one ended: %v, and its entry", tt.user, tt.id, r, err, tt.want)
		}
		if tt.want && (len(r.Removed) != 1 || r.Removed[0].ID != tt.id || r.Removed[0].Token != "gone") {
			t.Errorf("Revoke(%s, %s) removed %+v, want the entry of %s", tt.user, tt.id, r.Removed, tt.id)
		}
	}
	var kn int64
	kn, _ = rdb.Do(ctx, rdb.B().Exists().Key(sessions.Key("gone"), sessions.Key("keep")).Build()).AsInt64()
	if kn != 1 {
		t.Errorf("%d of the two keys exist after one was revoked, want 1", kn)
	}
	select {
	case m := <-got:
		if m != sessions.MsgEnded {
			t.Errorf("revoked session's channel got %q, want %q", m, sessions.MsgEnded)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("revoked session's channel got nothing")
	}
}

// A revoke that ends nothing (an id not on the user's list: mistyped, already
// gone, or another user's) tells no page: every open page of the user would
// read the account from Redis and reload its list, so one request that
// changed nothing cost a read and a page per stream (hostile-clients run:
// 1,238 such revokes reached 600 open streams of one user as 579,068 events).
// "Log out everywhere else" always tells: it follows a new credential generation.
func TestARevokeThatEndsNothingTellsNoPage(t *testing.T) {
	ctx := context.Background()
	x, rdb := newIndex(t)
	listed := session(t, rdb, "listed", time.Now())
	if err := x.Add(ctx, "alice", listed, "", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	bobs := session(t, rdb, "bobs", time.Now())
	if err := x.Add(ctx, "bob", bobs, "", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	channel := sessions.UserChannel("alice")
	got := make(chan string, 16)
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_ = rdb.Receive(subCtx, rdb.B().Subscribe().Channel(channel).Build(), func(m rueidis.PubSubMessage) { got <- m.Message })
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		n, _ := rdb.Do(ctx, rdb.B().PubsubNumsub().Channel(channel).Build()).AsIntMap()
		if n[channel] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscription never started")
		}
	}

	for _, id := range []string{"0123456789abcdef", sessions.ID("bobs"), sessions.ID("never-issued")} {
		if r, err := x.Revoke(ctx, "alice", id); err != nil || r.Live != 0 || len(r.Removed) != 0 {
			t.Errorf("Revoke(alice, %s) = %+v, %v; want nothing ended", id, r, err)
		}
	}
	// Redis delivers one connection's messages in order: a marker published
	// after the revokes comes first unless they published too.
	const marker = "marker"
	if err := rdb.Do(ctx, rdb.B().Publish().Channel(channel).Message(marker).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != marker {
			t.Errorf("a revoke that ended nothing told alice's pages %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the marker never arrived")
	}
	if n, _ := rdb.Do(ctx, rdb.B().Exists().Key(sessions.Key("bobs")).Build()).AsInt64(); n != 1 {
		t.Error("alice's revoke of bob's session id ended it")
	}

	// A revoke that ends a session, and "log out everywhere else", tell.
	if r, err := x.Revoke(ctx, "alice", sessions.ID("listed")); err != nil || r.Live != 1 {
		t.Fatalf("Revoke(alice, listed) = %+v, %v; want it ended", r, err)
	}
	if _, err := x.RevokeOthers(ctx, "alice", sessions.ID("listed")); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		select {
		case m := <-got:
			if m != sessions.MsgSessions {
				t.Errorf("message %d on alice's channel: %q, want %q", i+1, m, sessions.MsgSessions)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d on alice's channel never came (a revoke that ended a session, then log out everywhere else)", i+1)
		}
	}
}

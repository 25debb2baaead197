package sessionindex

import (
	"bytes"
	"context"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/sessions"
)

// Every call on a user's index, and on its revoked ids, works when the key
// holds another type of value (SET over it with redis-cli): the key is
// deleted, with a WARN, and the call made again; nothing else is touched.
func TestEveryCallStartsAKeyOfAnotherTypeAgain(t *testing.T) {
	ctx := context.Background()
	x, rdb := newIndex(t)
	var logs bytes.Buffer
	x.Log = slog.New(slog.NewTextHandler(&logs, nil))
	set := func(key string) {
		t.Helper()
		if err := rdb.Do(ctx, rdb.B().Set().Key(key).Value("not a hash").Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Hour)
	index, revoked := sessions.IndexKey("u"), sessions.RevokedKey("u")
	// Two sessions listed, then key SET over.
	setUp := func(key string) {
		t.Helper()
		if err := rdb.Do(ctx, rdb.B().Del().Key(index, revoked).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{"keep-token", "other-token"} {
			if err := x.Add(ctx, "u", session(t, rdb, tok, time.Now()), "", deadline); err != nil {
				t.Fatal(err)
			}
		}
		set(key)
		logs.Reset()
	}
	ended := func(r Revoked, err error) error {
		if err == nil && (r.Live != 1 || len(r.Removed) != 1) {
			t.Errorf("%+v, want the one other live session ended and removed", r)
		}
		return err
	}
	for _, c := range []struct {
		name string
		keys []string
		call func() error
	}{
		{"Add", []string{index, revoked}, func() error {
			return x.Add(ctx, "u", session(t, rdb, "new-token", time.Now()), sessions.ID("keep-token"), deadline)
		}},
		{"List", []string{index}, func() error { _, err := x.List(ctx, "u"); return err }},
		{"Remove", []string{index}, func() error { return x.Remove(ctx, "u", sessions.ID("keep-token")) }},
		{"KeepIfListed", []string{index}, func() error {
			_, err := x.KeepIfListed(ctx, "u", "keep-token", "")
			return err
		}},
		{"Revoke", []string{revoked}, func() error { return ended(x.Revoke(ctx, "u", sessions.ID("other-token"))) }},
		{"RevokeOthers", []string{revoked}, func() error { return ended(x.RevokeOthers(ctx, "u", sessions.ID("keep-token"))) }},
	} {
		for _, k := range c.keys {
			setUp(k)
			if err := c.call(); err != nil {
				t.Errorf("%s with %s a string: %v", c.name, k, err)
			}
			typ, err := rdb.Do(ctx, rdb.B().Type().Key(k).Build()).ToString()
			if err != nil || typ != "hash" && typ != "none" {
				t.Errorf("%s: %s is a %s (%v), want a hash or none", c.name, k, typ, err)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), k) {
				t.Errorf("%s: no WARN naming %s: %q", c.name, k, logs.String())
			}
		}
	}
}

// A listed session whose key was edited by hand into another type or a
// value that is no session is listed as unreadable, not as 0 views, and
// does not fail the list of its user's other sessions.
func TestListSaysWhichSessionsItCannotRead(t *testing.T) {
	ctx := context.Background()
	x, rdb := newIndex(t)
	deadline := time.Now().Add(time.Hour)
	for _, tok := range []string{"fine-token", "hash-token", "junk-token", "many-token", "huge-token", "null-token"} {
		if err := x.Add(ctx, "u", session(t, rdb, tok, time.Now()), "", deadline); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []rueidis.Completed{
		rdb.B().Del().Key(sessions.Key("hash-token")).Build(),
		rdb.B().Hset().Key(sessions.Key("hash-token")).FieldValue().FieldValue("views", "7").Build(),
		rdb.B().Expire().Key(sessions.Key("hash-token")).Seconds(900).Build(),
		rdb.B().Set().Key(sessions.Key("junk-token")).Value(`{"broken":`).Keepttl().Build(),
		// docs/redis.md's own example of a hand edit, and a count no int holds.
		rdb.B().Set().Key(sessions.Key("many-token")).Value(`{"deadline":"2099-01-01T00:00:00.000Z","values":{"views":"many"}}`).Keepttl().Build(),
		rdb.B().Set().Key(sessions.Key("huge-token")).Value(`{"deadline":"2099-01-01T00:00:00.000Z","values":{"views":99999999999999999999}}`).Keepttl().Build(),
		rdb.B().Set().Key(sessions.Key("null-token")).Value(`{"deadline":"2099-01-01T00:00:00.000Z","values":{"views":null}}`).Keepttl().Build(),
	} {
		if err := rdb.Do(ctx, c).Error(); err != nil {
			t.Fatal(err)
		}
	}
	list, err := x.List(ctx, "u")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	got := map[string]bool{}
	for _, e := range list {
		got[e.ID] = e.Unreadable
	}
	want := map[string]bool{sessions.ID("fine-token"): false, sessions.ID("hash-token"): true, sessions.ID("junk-token"): true,
		sessions.ID("many-token"): true, sessions.ID("huge-token"): true, sessions.ID("null-token"): false}
	if !maps.Equal(got, want) {
		t.Errorf("listed (ID: unreadable) %v, want %v", got, want)
	}
}

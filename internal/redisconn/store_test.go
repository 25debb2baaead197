package redisconn_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

func connect(t *testing.T, redisURL string) rueidis.Client {
	t.Helper()
	rdb, err := redisconn.Connect(t.Context(), redisconn.Config{URL: redisURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rdb.Close)
	return rdb
}

// Sessions are kept as scs/redisstore kept them: one string per session at
// prefix+token, expiring when the session does.
func TestSessionStoreKeepsSessionsAsRedisstoreDid(t *testing.T) {
	rs := redistest.Start(t)
	store := redisconn.NewSessionStore(connect(t, rs.URL()), "sess:")
	ctx := context.Background()
	expiry := time.Now().Add(time.Hour).Truncate(time.Millisecond)

	t.Run("a commit is a string with the session's expiry", func(t *testing.T) {
		if err := store.CommitCtx(ctx, "tok", []byte("v\x00\xff"), expiry); err != nil {
			t.Fatal(err)
		}
		if got := rs.MustDo("GET", "sess:tok"); got != "v\x00\xff" {
			t.Errorf("sess:tok = %q", got)
		}
		if got := rs.MustDo("PEXPIRETIME", "sess:tok"); got != strconv.FormatInt(expiry.UnixMilli(), 10) {
			t.Errorf("PEXPIRETIME = %s, want %d", got, expiry.UnixMilli())
		}
	})
	t.Run("find reads it back, and a missing one is not found", func(t *testing.T) {
		b, found, err := store.FindCtx(ctx, "tok")
		if err != nil || !found || string(b) != "v\x00\xff" {
			t.Errorf("find: %q, %v, %v", b, found, err)
		}
		if _, found, err := store.FindCtx(ctx, "nope"); found || err != nil {
			t.Errorf("find of a missing session: %v, %v", found, err)
		}
	})
	t.Run("a commit with an expiry already past deletes it", func(t *testing.T) {
		if err := store.CommitCtx(ctx, "tok", []byte("w"), time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := rs.MustDo("EXISTS", "sess:tok"); got != "0" {
			t.Errorf("EXISTS sess:tok = %s after a commit in the past", got)
		}
	})
	t.Run("delete removes it", func(t *testing.T) {
		_ = store.CommitCtx(ctx, "tok", []byte("v"), expiry)
		if err := store.DeleteCtx(ctx, "tok"); err != nil {
			t.Fatal(err)
		}
		if got := rs.MustDo("EXISTS", "sess:tok"); got != "0" {
			t.Errorf("EXISTS sess:tok = %s after delete", got)
		}
	})
}

// After Redis restarts, the client's connection is dead. The first session
// reads and writes still succeed: the store sends them once more on a
// broken connection.
func TestSessionStoreSurvivesRedisRestart(t *testing.T) {
	rs := redistest.Start(t)
	store := redisconn.NewSessionStore(connect(t, rs.URL()), "sess:")
	ctx := context.Background()
	if err := store.CommitCtx(ctx, "tok", []byte("v"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	rs.Restart()

	if err := store.CommitCtx(ctx, "tok", []byte("w"), time.Now().Add(time.Hour)); err != nil {
		t.Errorf("commit after the restart: %v", err)
	}
	for i := range 4 {
		b, found, err := store.FindCtx(ctx, "tok")
		if err != nil || !found || string(b) != "w" {
			t.Fatalf("find %d after the restart: %q, %v, %v", i, b, found, err)
		}
	}
	if err := store.DeleteCtx(ctx, "tok"); err != nil {
		t.Errorf("delete after the restart: %v", err)
	}
}

// A bad URL is refused with a reason that does not repeat the URL, which
// may hold a password.
func TestBadURLErrorsHideThePassword(t *testing.T) {
	for _, u := range []string{"redis://:s3cret@localhost:63x9/0", "redis://:s3cret@localhost:6379/x", "http://:s3cret@localhost/"} {
		_, err := redisconn.Connect(t.Context(), redisconn.Config{URL: u})
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows the password: %v", u, err)
		}
	}
}

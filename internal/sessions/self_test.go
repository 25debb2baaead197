package sessions

import (
	"context"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2/memstore"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// A count's list names the session that counted (Self): the count page marks
// that row as this browser's without hashing the token again.
func TestCountsListNameTheirSession(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	impls := map[string]interface {
		IncrViews(ctx context.Context, token, user string, v Visit) (int, BrowserList, Lab, error)
		NewBrowser(ctx context.Context, token string, views int, v Visit, limit throttle.Step, first *Written) (BrowserList, time.Duration, error)
	}{
		"redis":  NewOps(rs.Client(t)),
		"memory": &MemoryOps{Store: memstore.New(), Idle: time.Hour},
	}
	for name, ops := range impls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			v := Visit{Addr: "192.0.2.7", Device: "Firefox on Linux"}
			const token = "self-test-token-" + "0123456789abcdefghijklmnopqrstuvw"
			list, _, err := ops.NewBrowser(ctx, token, 1, v, throttle.Step{}, nil)
			if err != nil || list.Self != ID(token) {
				t.Fatalf("NewBrowser: Self %q, %v; want %q", list.Self, err, ID(token))
			}
			b, err := Codec{}.Encode(time.Now().Add(time.Hour), map[string]any{KeyViews: 1})
			if err != nil {
				t.Fatal(err)
			}
			if m, ok := ops.(*MemoryOps); ok {
				err = m.Store.Commit(token, b, time.Now().Add(time.Hour))
			} else {
				rdb := rs.Client(t)
				err = rdb.Do(ctx, rdb.B().Set().Key(Key(token)).Value(string(b)).Build()).Error()
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := ops.NewBrowser(ctx, "another-token", 1, v, throttle.Step{}, nil); err != nil {
				t.Fatal(err)
			}
			n, list, _, err := ops.IncrViews(ctx, token, "", v)
			if err != nil || n != 2 || list.Self != ID(token) || len(list.Rows) != 2 {
				t.Fatalf("IncrViews: %d, %+v, %v; want 2 views, 2 rows, Self %q", n, list, err, ID(token))
			}
		})
	}
}

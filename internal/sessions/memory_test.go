package sessions

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2/memstore"
)

func memorySession(t *testing.T, m *MemoryOps, token string, views int) {
	t.Helper()
	b, err := Codec{}.Encode(time.Now().Add(time.Hour), map[string]any{KeyViews: views, KeySeen: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Store.Commit(token, b, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// In memory mode, concurrent counts of one session are all counted (within
// the one process that holds it), and each is published for live pages.
func TestMemoryOpsCountsConcurrentViews(t *testing.T) {
	var mu sync.Mutex
	var published []string
	m := &MemoryOps{Store: memstore.New(), Idle: time.Hour, Publish: func(ch, msg string) {
		mu.Lock()
		defer mu.Unlock()
		published = append(published, ch+" "+msg)
	}}
	memorySession(t, m, "tok", 0)
	const n = 200
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, _, _, err := m.IncrViews(context.Background(), "tok", "", Visit{Addr: "127.0.0.1"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	b, found, _ := m.Store.Find("tok")
	if !found {
		t.Fatal("session gone after counting")
	}
	_, values, _ := Codec{}.Decode(b)
	if values[KeyViews] != n {
		t.Errorf("views = %v after %d concurrent counts", values[KeyViews], n)
	}
	counts := 0
	for _, p := range published {
		if strings.HasPrefix(p, SessionChannel(ID("tok"))+" "+MsgCountPrefix) {
			counts++
		}
	}
	if counts != n {
		t.Errorf("%d counts published, want %d", counts, n)
	}
}

// Each op says ErrNoSession for a session that is not there, as Ops does.
func TestMemoryOpsMissingSession(t *testing.T) {
	m := &MemoryOps{Store: memstore.New()}
	ctx := context.Background()
	if _, _, _, err := m.IncrViews(ctx, "none", "", Visit{Addr: "127.0.0.1"}); !errors.Is(err, ErrNoSession) {
		t.Errorf("IncrViews: %v", err)
	}
	if err := m.Touch(ctx, "none", "", time.Now(), time.Now().Add(time.Hour)); !errors.Is(err, ErrNoSession) {
		t.Errorf("Touch: %v", err)
	}
	if _, err := m.Take(ctx, "none"); !errors.Is(err, ErrNoSession) {
		t.Errorf("Take: %v", err)
	}
	memorySession(t, m, "tok", 3)
	if _, err := m.Take(ctx, "tok"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Take(ctx, "tok"); !errors.Is(err, ErrNoSession) {
		t.Errorf("second Take: %v, want ErrNoSession", err)
	}
	if views, ok, _ := m.Renewed(ctx, "tok"); !ok || views != 3 {
		t.Errorf("Renewed after Take = %d, %v; want the 3 views it carried, true", views, ok)
	}
	if _, ok, _ := m.Renewed(ctx, "other"); ok {
		t.Errorf("Renewed of another token = true")
	}
}

package sessions

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// A count publishes its count on the session's channel and the list on the
// address's, in that order, to whoever listens there when it runs, and
// sends no PUBLISH for a channel nobody listens on (it would reach no one).
func TestCountPublishesToWhoeverListens(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	rdb := rs.Client(t)
	o := NewOps(rdb)
	ctx := context.Background()
	const addr = "192.0.2.7"
	v := Visit{Addr: addr, Device: "Firefox on Linux", Process: "p1"}
	raw, err := Codec{}.Encode(time.Now().Add(time.Hour), map[string]any{KeyViews: 1})
	if err != nil {
		t.Fatal(err)
	}
	rs.MustDo("SET", Key("tok"), string(raw), "EX", "3600")
	session, address := SessionChannel(ID("tok")), BrowsersChannel(addr)

	heard := make(chan rueidis.PubSubMessage, 16)
	conn, release := rdb.Dedicate()
	t.Cleanup(release)
	conn.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) { heard <- m }})
	listen := func(ch string) {
		t.Helper()
		if err := conn.Do(ctx, conn.B().Subscribe().Channel(ch).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	published := func() int {
		t.Helper()
		for line := range strings.Lines(rs.MustDo("INFO", "commandstats")) {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_publish:calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				return n
			}
		}
		return 0
	}
	count := func(want int) {
		t.Helper()
		n, _, _, err := o.IncrViews(ctx, "tok", "", v)
		if err != nil || n != want {
			t.Fatalf("count: %d, %v; want %d", n, err, want)
		}
	}
	next := func(want string) rueidis.PubSubMessage {
		t.Helper()
		select {
		case m := <-heard:
			if m.Channel != want {
				t.Fatalf("heard %q on %s, want a message on %s", m.Message, m.Channel, want)
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing heard on %s", want)
		}
		return rueidis.PubSubMessage{}
	}
	quiet := func() {
		t.Helper()
		select {
		case m := <-heard:
			t.Fatalf("heard %q on %s", m.Message, m.Channel)
		case <-time.After(100 * time.Millisecond):
		}
	}

	t.Run("nobody listens: no PUBLISH", func(t *testing.T) {
		before := published()
		count(2)
		if _, _, err := o.NewBrowser(ctx, "other", 1, v, throttle.Step{}, nil); err != nil {
			t.Fatal(err)
		}
		if n := published() - before; n != 0 {
			t.Errorf("%d PUBLISH with nobody listening", n)
		}
	})
	t.Run("the session's channel: the count alone", func(t *testing.T) {
		listen(session)
		before := published()
		count(3)
		if m := next(session); m.Message != MsgCountPrefix+"3" {
			t.Errorf("heard %q", m.Message)
		}
		quiet()
		if n := published() - before; n != 1 {
			t.Errorf("%d PUBLISH, want 1", n)
		}
	})
	t.Run("both: the count, then the list", func(t *testing.T) {
		listen(address)
		count(4)
		if m := next(session); m.Message != MsgCountPrefix+"4" {
			t.Errorf("heard %q", m.Message)
		}
		m := next(address)
		list, err := ParseBrowsers(strings.TrimPrefix(m.Message, MsgBrowsersPrefix))
		if err != nil || !strings.HasPrefix(m.Message, MsgBrowsersPrefix) || len(list.Rows) != 2 ||
			list.Rows[0].ID != ID("tok") || list.Rows[0].Views != 4 || !list.Rows[0].Open || list.Rows[1].Open {
			t.Errorf("heard %q (%+v, %v): want this browser first, open, at 4 views, then the other, closed", m.Message, list, err)
		}
		quiet()
	})
	t.Run("a new browser: the list", func(t *testing.T) {
		if _, _, err := o.NewBrowser(ctx, "third", 1, v, throttle.Step{}, nil); err != nil {
			t.Fatal(err)
		}
		m := next(address)
		if list, err := ParseBrowsers(strings.TrimPrefix(m.Message, MsgBrowsersPrefix)); err != nil || len(list.Rows) != 3 || list.Rows[0].ID != ID("third") {
			t.Errorf("heard %q (%+v, %v): want the new browser first of 3", m.Message, list, err)
		}
		quiet()
	})
}

package sessions

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/throttle"
)

// The count scripts keep an address's rows for its newest MaxBrowsers only
// and build the list from them without decoding; what each count and each
// read returns must be what the whole history says: this browser first,
// then the newest others (ZRANGE's order), every row's own count, how many
// counted, and no more rows stored than listed.
func TestBrowsersListIsTheNewestOfAll(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	rdb := rs.Client(t)
	o := NewOps(rdb)
	ctx := context.Background()
	const addr = "192.0.2.9"
	type state struct {
		views int
		at    int64
		dev   string
	}
	all := map[string]*state{}
	newest := func(first string) []string {
		ids := make([]string, 0, len(all))
		for id := range all {
			if id != first {
				ids = append(ids, id)
			}
		}
		slices.SortFunc(ids, func(x, y string) int { // ZRANGE REV: time, then ID, descending
			if all[x].at != all[y].at {
				return int(all[y].at - all[x].at)
			}
			return -cmpStrings(x, y)
		})
		if first != "" {
			ids = append([]string{first}, ids...)
		}
		return ids[:min(len(ids), MaxBrowsers)]
	}
	check := func(what string, got BrowserList, want []string) {
		t.Helper()
		var ids []string
		for _, b := range got.Rows {
			ids = append(ids, b.ID)
			s := all[b.ID]
			if s == nil || b.Views != s.views || b.At != s.at || b.Device != s.dev || b.Open {
				t.Fatalf("%s: row %+v, want %+v", what, b, s)
			}
		}
		if !slices.Equal(ids, want) || got.Total != len(all) {
			t.Fatalf("%s: ids %v total %d,\nwant %v total %d", what, ids, got.Total, want, len(all))
		}
		if n, _ := rdb.Do(ctx, rdb.B().Hlen().Key(BrowsersKey(addr)).Build()).AsInt64(); n != int64(len(want)) {
			t.Fatalf("%s: %d rows stored, %d listed", what, n, len(want))
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 400 {
		token := "browser-" + strconv.Itoa(r.IntN(25))
		views := r.IntN(1000)
		dev := fmt.Sprintf("Device %d <&>", r.IntN(3))
		list, wait, err := o.NewBrowser(ctx, token, views, Visit{Addr: addr, Device: dev}, throttle.Step{}, nil)
		if err != nil || wait != 0 {
			t.Fatal(wait, err)
		}
		id := ID(token)
		if len(list.Rows) == 0 || list.Rows[0].ID != id {
			t.Fatalf("count %d: this browser is not first: %+v", i, list.Rows)
		}
		all[id] = &state{views: views, at: list.Rows[0].At, dev: dev}
		check(fmt.Sprintf("count %d", i), list, newest(id))
		if i%50 == 0 {
			read, err := o.Browsers(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			check(fmt.Sprintf("read after count %d", i), read, newest(""))
		}
	}
}

func cmpStrings(x, y string) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// An address counts at most maxCounted browsers: the oldest beyond it are
// forgotten, so a page says "and 990 more", never more than that.
func TestBrowsersCountedAreBounded(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	o := NewOps(rs.Client(t))
	ctx := context.Background()
	var list BrowserList
	for i := range maxCounted + 5 {
		var err error
		if list, _, err = o.NewBrowser(ctx, "b-"+strconv.Itoa(i), 1, Visit{Addr: "192.0.2.10"}, throttle.Step{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if list.Total != maxCounted || len(list.Rows) != MaxBrowsers {
		t.Errorf("total %d, %d rows; want %d, %d", list.Total, len(list.Rows), maxCounted, MaxBrowsers)
	}
	if n := rs.MustDo("ZCARD", BrowsersSeenKey("192.0.2.10")); n != strconv.Itoa(maxCounted) {
		t.Errorf("ZCARD = %s, want %d", n, maxCounted)
	}
}

// Browsers quiet for the window leave the set and their rows with the next
// new browser's count, whether they were listed or not.
func TestBrowsersQuietForTheWindowLeave(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	o := NewOps(rs.Client(t))
	ctx := context.Background()
	const addr = "192.0.2.11"
	count := func(token string) BrowserList {
		t.Helper()
		list, _, err := o.NewBrowser(ctx, token, 1, Visit{Addr: addr}, throttle.Step{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return list
	}
	age := func(tokens ...string) { // as a window's silence would
		old := strconv.FormatInt(time.Now().Add(-BrowsersWindow-time.Second).UnixMilli(), 10)
		for _, token := range tokens {
			rs.MustDo("ZADD", BrowsersSeenKey(addr), old, ID(token))
		}
	}
	late := 0
	want := func(total, rows, counted int) {
		t.Helper()
		late++
		list := count("late-" + strconv.Itoa(late))
		if list.Total != total || len(list.Rows) != rows {
			t.Errorf("total %d, %d rows; want %d and %d", list.Total, len(list.Rows), total, rows)
		}
		if n := rs.MustDo("ZCARD", BrowsersSeenKey(addr)); n != strconv.Itoa(counted) {
			t.Errorf("ZCARD = %s, want %d", n, counted)
		}
		if n := rs.MustDo("HLEN", BrowsersKey(addr)); n != strconv.Itoa(rows) {
			t.Errorf("HLEN = %s, want %d", n, rows)
		}
	}
	for i := range MaxBrowsers + 2 {
		count("b-" + strconv.Itoa(i))
	}
	age("b-0", "b-1") // not listed: no rows
	want(MaxBrowsers+1, MaxBrowsers, MaxBrowsers+1)
	age("b-11") // listed
	want(MaxBrowsers+1, MaxBrowsers, MaxBrowsers+1)
	if rs.MustDo("HEXISTS", BrowsersKey(addr), ID("b-11")) != "0" {
		t.Error("the quiet listed browser's row is still stored")
	}
}

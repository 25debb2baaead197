package sessions

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistest"
)

// A count nobody listens to returns its list of two rows or more in parts
// for the app to join (joinParts); the app must make of them the very list
// the scripts join and publish (joined), byte for byte, for any rows and
// open flags, and read the list itself when a row is missing.
func TestJoinPartsIsTheScriptsJoin(t *testing.T) {
	rs := redistest.Start(t, "--appendonly", "no")
	rdb := rs.Client(t)
	both := rueidis.NewLuaScript(scriptNames.Replace(noteBrowser + `
local ids, rows, n = cjson.decode(ARGV[1]), cjson.decode(ARGV[2]), cjson.decode(ARGV[3])
for i = 1, #rows do if rows[i] == '' then rows[i] = false end end
local total = tonumber(ARGV[4])
return {joined(ids, rows, total, n), joined(ids, rows, total, n, true)}`))
	devices := []string{"Firefox on Linux", `a "quoted" one`, "back\\slash", "new\nline", "ünï \u2028 <b>&", "", "\x01\x7f"}
	r := rand.New(rand.NewPCG(1, 2))
	inPlace := 0
	for c := range 300 {
		k := 2 + r.IntN(MaxBrowsers-1)
		ids, rows, n := make([]string, k), make([]string, k), make([]any, 0, 2*k+2)
		for i := range k {
			ids[i] = ID(strconv.Itoa(r.Int()))
			rows[i] = fmt.Sprintf(`{"device":%s,"logged_in":%t,"views":%d,"at":%d}`,
				jsonString(devices[r.IntN(len(devices))]), r.IntN(2) == 0, r.IntN(1e6), r.Int64N(1<<41))
			if c%10 == 9 && r.IntN(k) == 0 {
				rows[i] = "" // missing
			}
			n = append(n, SessionChannel(ids[i]), r.IntN(3))
		}
		n = append(n, "live:addr:x", 0)
		total := k + r.IntN(1000)
		arg := func(v any) string { b, _ := json.Marshal(v); return string(b) }
		got, err := both.Exec(context.Background(), rdb, nil, []string{arg(ids), arg(rows), arg(n), strconv.Itoa(total)}).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		joined, parts := got[0], got[1]
		want, err := ParseBrowsers(joined)
		if err != nil {
			t.Fatalf("the script's own list: %v\n%s", err, joined)
		}
		list, err := parseNoted(parts)
		if err != nil || !reflect.DeepEqual(list, want) {
			t.Fatalf("parts %q\nread as %+v, %v\nwant %+v", parts, list, err, want)
		}
		if j, err := joinParts(parts); parts != joined && (err != nil || j != joined) {
			t.Fatalf("parts %q\njoined as %q, %v\nwant      %q", parts, j, err, joined)
		}
		// Rows the scripts wrote with a plain device are read in place.
		if _, ok := parseParts(parts); parts != joined && !ok && plain(rows) {
			t.Fatalf("parts %q: declined by parseParts", parts)
		} else if ok {
			inPlace++
		}
	}
	if inPlace == 0 {
		t.Error("no list was read in place")
	}
}

// plain: every row is there, its device without escapes.
func plain(rows []string) bool {
	for _, r := range rows {
		if r == "" || strings.ContainsAny(r, `\`) || strings.Count(r, `"`) != 10 {
			return false
		}
		for _, c := range r {
			if c < 0x20 || c >= 0x7f {
				return false
			}
		}
	}
	return true
}

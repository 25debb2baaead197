package sessions

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// parsePlainBrowsers agrees with encoding/json on what it accepts.
func sameBrowsersAsJSON(t *testing.T, rows string) {
	t.Helper()
	got, ok := parsePlainBrowsers(rows)
	var want []Browser
	err := json.Unmarshal([]byte(rows), &want)
	if !ok {
		return
	}
	if err != nil {
		t.Fatalf("%q: the fast path read %+v, encoding/json refuses it: %v", rows, got, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\nfast path     %+v\nencoding/json %+v", rows, got, want)
	}
}

func TestParseBrowsersSameAsJSON(t *testing.T) {
	for _, rows := range []string{
		// As the scripts' cjson writes it.
		`[{"device":"Go HTTP client","at":1796549741720,"views":1,"logged_in":true,"id":"ca068d0123456789"},{"id":"0123456789abcdef","logged_in":false,"open":true,"views":12,"at":1796549741001,"device":"Firefox on Linux"}]`,
		`[{"open":false,"device":"Go HTTP client","at":1796549741720,"views":1,"logged_in":true,"id":"ca068d0123456789"}]`,
		`[]`, `[{}]`,
		// What it leaves to encoding/json.
		`[{"views":1,"views":2}]`, `[{"ID":"x"}]`, `[{"device":"a\/b"}]`, `[{"views":1.0}]`, `[{"views":1e2}]`,
		`[{"views":007}]`, `[{"views":-0}]`, `[{"views":-}]`, `[{"at":-12}]`, `[{"at":12345678901234567890}]`,
		`[{"logged_in":null}]`, `[{"open":true,"open":false}]`, `[{"logged_in":1}]`, `null`, `[null]`, ` []`, `[] `, `[{"id":"a"},]`, `[{"id":"a"}`,
		`[{"device":"é"}]`, `[{"other":1}]`,
		// Keys near Browser's: the fast path compares each whole, with its colon.
		`[{"idx":"a"}]`, `[{"i":"a"}]`, `[{"id" :"a"}]`, `[{"a":1}]`, `[{"at"`, `[{"`, `[{"d`, `[{"device"}]`, `[{"viewz":1}]`, `[{"logged_in":true,"open":false,"at":1}]`,
	} {
		sameBrowsersAsJSON(t, rows)
	}
}

// The fast path reads every field of Browser: a field added to it without
// the fast path knowing would send every count the slow way.
func TestParseBrowsersFastPathKnowsEveryField(t *testing.T) {
	all := Browser{ID: "ca068d0123456789", Device: "Firefox on Linux", LoggedIn: true, Open: true, Views: 3, At: 1796549741720}
	for i := range reflect.TypeFor[Browser]().NumField() {
		if reflect.ValueOf(all).Field(i).IsZero() {
			t.Fatalf("set field %s in this test", reflect.TypeFor[Browser]().Field(i).Name)
		}
	}
	b, err := json.Marshal([]Browser{all, {}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := parsePlainBrowsers(string(b)); !ok {
		t.Errorf("the fast path declines %s", b)
	}
	sameBrowsersAsJSON(t, string(b))
}

func FuzzParseBrowsersSameAsJSON(f *testing.F) {
	f.Add(`[{"device":"Go HTTP client","at":1796549741720,"views":1,"logged_in":true,"id":"ca068d0123456789"}]`)
	f.Add(`[{"views":-0,"at":0,"logged_in":false}]`)
	f.Fuzz(sameBrowsersAsJSON)
}

// jsonString writes what encoding/json writes, plain strings without it.
func TestJSONStringIsMarshal(t *testing.T) {
	strs := []string{"", "Firefox on Linux", "vm:8080", `a"b`, `a\b`, "a<b>&c", "é", "\x00", "\x7f", "\xff", "a\u2028b"}
	for c := range 256 {
		strs = append(strs, "x"+string(rune(c))+"y", string([]byte{byte(c)}))
	}
	for _, s := range strs {
		want, _ := json.Marshal(s)
		if got := jsonString(s); got != string(want) {
			t.Errorf("jsonString(%q) = %s, want %s", s, got, want)
		}
	}
}

// A count reads its list of 10 without a string per key or value: the
// fast path cuts the ids and devices from the list it was given (and the
// list, read as JSON, is the same: the tests above).
func TestParseBrowsersCutsFromTheList(t *testing.T) {
	var rows []Browser
	for i := range MaxBrowsers {
		rows = append(rows, Browser{ID: fmt.Sprintf("%016x", i), Device: "Firefox on Linux", LoggedIn: i%2 == 0, Open: i%3 == 0, Views: i, At: 1796549741720 + int64(i)})
	}
	b, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	list := string(b)
	sameBrowsersAsJSON(t, list)
	allocs := testing.AllocsPerRun(100, func() {
		if _, ok := parsePlainBrowsers(list); !ok {
			t.Fatal("the fast path declines the list")
		}
	})
	if allocs > 2 { // the list's bytes and the rows
		t.Errorf("%v allocations to read %d rows, want at most 2", allocs, len(rows))
	}
}

// A list's parts read in place are what joining them and reading the joined
// list makes: for any parts parseParts accepts.
func FuzzParsePartsSameAsJoined(f *testing.F) {
	f.Add("12 10 ca068d0123456789 0b1c\n" + `{"device":"Firefox on Linux","logged_in":true,"views":3,"at":1796549741720}` + "\n" + `{"device":"Go HTTP client","logged_in":false,"views":1,"at":1796549741000}`)
	f.Add("2 11 a b\n{\"views\":1}\n{\"at\":2,\"open\":false}")
	f.Add("2 01 a b\n{}\n{\"views\":1}")
	f.Add("2 01 a\\u0041 b\n{\"views\":1}\n{\"views\":2}")
	f.Fuzz(func(t *testing.T, parts string) {
		got, ok := parseParts(parts)
		if !ok {
			return
		}
		joined, err := joinParts(parts)
		if err != nil {
			t.Fatalf("parseParts read %q, which does not join: %v", parts, err)
		}
		want, err := ParseBrowsers(joined)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("parts %q\nread in place as %+v\njoined and read as %+v, %v", parts, got, want, err)
		}
	})
}

package handlers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A flood from many addresses cannot grow the tally of who was refused:
// it holds at most maxTallied clients, counts every refusal, says there
// were more clients than it holds, and still names the client refused most,
// with its count exact when the tally knows it (else "at least").
func TestRefusalTallyIsBoundedAndFindsTheHeaviest(t *testing.T) {
	var tally refusalTally
	const flood, every = 100_000, 100
	for i := range flood {
		tally.add(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		if i%every == 0 {
			tally.add("192.0.2.66")
		}
		if n := len(tally.clients); n > maxTallied {
			t.Fatalf("after %d clients the tally holds %d, want at most %d", i+1, n, maxTallied)
		}
	}
	s := tally.summary()
	if want := flood + flood/every; s.Refused != want {
		t.Errorf("refused %d, want %d", s.Refused, want)
	}
	if !s.More || s.Clients != maxTallied {
		t.Errorf("clients %d (more: %v), want more than %d", s.Clients, s.More, maxTallied)
	}
	if len(s.Top) != maxNamed || s.Top[0] != (refuser{Client: "192.0.2.66", Refused: flood / every}) {
		t.Errorf("top %+v, want %d with 192.0.2.66 first, refused exactly %d", s.Top, maxNamed, flood/every)
	}
	for _, r := range s.Top[1:] {
		if !r.AtLeast {
			t.Errorf("%+v: a count the tally cannot know exactly, want it marked at least", r)
		}
	}

	var few refusalTally
	for _, c := range []string{"a", "b", "a", "c", "d", "a", "b"} {
		few.add(c)
	}
	want := refusals{Refused: 7, Clients: 4, Top: []refuser{{Client: "a", Refused: 3}, {Client: "b", Refused: 2}, {Client: "c", Refused: 1}}}
	if got := few.summary(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("few clients: %+v, want %+v (exact; ties in the order first refused)", got, want)
	}
}

// With -log-format json the clients refused most are a list of objects, so
// a log pipeline reads them without parsing text; the text format reads as
// a sentence.
func TestRefusalLineFields(t *testing.T) {
	var tally refusalTally
	for _, c := range []string{"192.0.2.1", "2001:db8::/64", "192.0.2.1"} {
		tally.add(c)
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Warn("x throttled", tally.summary().argsAs(byClient)...)
	slog.New(slog.NewJSONHandler(&js, nil)).Warn("x throttled", tally.summary().argsAs(byClient)...)
	if want := `refused=3 clients=2 top="192.0.2.1 (2), 2001:db8::/64 (1)"`; !strings.Contains(text.String(), want) {
		t.Errorf("text:\n%s\nwant %s", text.String(), want)
	}
	var line struct {
		Refused int `json:"refused"`
		Clients int `json:"clients"`
		Top     []struct {
			Client  string `json:"client"`
			Refused int    `json:"refused"`
		} `json:"top"`
	}
	if err := json.Unmarshal(js.Bytes(), &line); err != nil {
		t.Fatalf("%v\n%s", err, js.String())
	}
	if line.Refused != 3 || line.Clients != 2 || len(line.Top) != 2 || line.Top[0].Client != "192.0.2.1" || line.Top[0].Refused != 2 {
		t.Errorf("json: %+v\n%s", line, js.String())
	}
}

// backdate moves kind's last line d into the past, as if d had passed
// (the next event then writes the line, before the timer).
func (l *tallyLog) backdate(kind string, d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k := l.kinds[kind]; k != nil {
		k.logged = k.logged.Add(-d)
	}
}

// The same tally counts blocked origins and the routes an outage failed; a
// line names its fields after what it counts, in text and in JSON.
func TestTallyLinesNameWhatTheyCount(t *testing.T) {
	for _, tc := range []struct {
		names            tallyNames
		keys             []string
		text, count, key string
	}{
		{byOrigin, []string{"https://evil.example", "null", "https://evil.example"},
			`blocked=3 origins=2 top="https://evil.example (2), null (1)"`, "blocked", "origin"},
		{byRoute, []string{"GET /count", "POST /login", "GET /count"},
			`failed_requests=3 routes=2 top="GET /count (2), POST /login (1)"`, "failed_requests", "route"},
		{byClient, []string{"192.0.2.1", "2001:db8::/64", "192.0.2.1"},
			`refused=3 clients=2 top="192.0.2.1 (2), 2001:db8::/64 (1)"`, "refused", "client"},
	} {
		var tally refusalTally
		for _, k := range tc.keys {
			tally.add(k)
		}
		var text, js bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Warn("x", tally.summary().argsAs(tc.names)...)
		slog.New(slog.NewJSONHandler(&js, nil)).Warn("x", tally.summary().argsAs(tc.names)...)
		if !strings.Contains(text.String(), tc.text) {
			t.Errorf("text:\n%s\nwant %s", text.String(), tc.text)
		}
		var line map[string]any
		if err := json.Unmarshal(js.Bytes(), &line); err != nil {
			t.Fatalf("%v\n%s", err, js.String())
		}
		want := map[string]any{tc.count: 3.0, tc.names.distinct: 2.0, "top": []any{
			map[string]any{tc.key: tc.keys[0], tc.count: 2.0},
			map[string]any{tc.key: tc.keys[1], tc.count: 1.0},
		}}
		for k, v := range want {
			if fmt.Sprint(line[k]) != fmt.Sprint(v) {
				t.Errorf("json %s: %v, want %v\n%s", k, line[k], v, js.String())
			}
		}
	}
}

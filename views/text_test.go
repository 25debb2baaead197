package views

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/a-h/templ"
)

// templText is what templ's generated code writes for { s }.
func templText(s string) string {
	v, _ := templ.JoinStringErrs(s)
	return templ.EscapeString(v)
}

// onlyWriter hides bytes.Buffer's WriteString: text's other path.
type onlyWriter struct{ b *bytes.Buffer }

func (w onlyWriter) Write(p []byte) (int, error) { return w.b.Write(p) }

func TestTextIsTemplsText(t *testing.T) {
	var cases []string
	for c := range 256 {
		cases = append(cases, string([]byte{byte(c)}), "a"+string([]byte{byte(c)})+"b")
	}
	cases = append(cases, "", "<<&&''\"\">>", "plain text", "ünïcødé ✓ <b>", "x\xffy&")
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, r.IntN(24))
		for i := range b {
			b[i] = "ab<>&'\"\xff é"[r.IntN(11)]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		want := templText(s)
		var b bytes.Buffer
		if err := text(s).Render(context.Background(), &b); err != nil || b.String() != want {
			t.Fatalf("text(%q) wrote %q, %v; templ's { s } writes %q", s, b.String(), err, want)
		}
		b.Reset()
		if err := text(s).Render(context.Background(), onlyWriter{&b}); err != nil || b.String() != want {
			t.Fatalf("text(%q) to a plain io.Writer wrote %q, %v; want %q", s, b.String(), err, want)
		}
	}
	if html.EscapeString("<'\"&>") != templText("<'\"&>") {
		t.Fatal("templ's { s } no longer escapes as html.EscapeString; text's fallback follows it")
	}
}

// failWriter fails its n-th write.
type failWriter struct{ n int }

var errWrite = errors.New("write failed")

func (w *failWriter) WriteString(s string) (int, error) {
	if w.n--; w.n == 0 {
		return 0, errWrite
	}
	return len(s), nil
}
func (w *failWriter) Write(p []byte) (int, error) { return w.WriteString(string(p)) }

func TestTextReturnsTheWriteError(t *testing.T) {
	s := "a<b&c"
	writes := strings.Count(s, "<") + strings.Count(s, "&")
	for n := 1; n <= 2*writes+1; n++ {
		if err := text(s).Render(context.Background(), &failWriter{n: n}); !errors.Is(err, errWrite) {
			t.Errorf("write %d failing: Render returned %v", n, fmt.Sprint(err))
		}
	}
}

// templ drops the whitespace after an @call where it keeps it after a
// { x }: the browsers list writes those spaces itself (@text(" ")).
func TestBrowsersListKeepsItsSpaces(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 55, 20, 0, time.UTC)
	b := Browsers{Rows: []BrowserRow{{Device: "a<b", CountedAt: at}, {Device: "c", CountedAt: at, This: true}}, Max: 10, Window: 10 * time.Minute, Now: at}
	got := renderString(t, BrowsersList(b))
	for _, want := range []string{
		`data-testid="browser-device">a&lt;b </td>`,
		`data-testid="browser-device">c <strong data-testid="this-browser">`,
		`<time datetime="2026-12-06T10:55:20Z">10:55:20</time> <small>(<span data-ago="2026-12-06T10:55:20Z">just now</span>)</small>`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the list lacks %s:\n%s", want, got)
		}
	}
}

// The browsers section's note keeps the space before its @text, which starts
// with the verb because templ reads an @call straight after a word as text.
func TestThePageNote(t *testing.T) {
	for presence, want := range map[bool]string{
		true:  `when any of them counts, and &#34;Page&#34; says which have a page of this app open now (its live stream listening).`,
		false: `when any of them counts.`,
	} {
		got := renderString(t, BrowsersSection(Browsers{Presence: presence, Max: 10, Window: 10 * time.Minute}))
		if !strings.Contains(got, want) {
			t.Errorf("presence %v: the section lacks %q:\n%s", presence, want, got)
		}
	}
}

package views

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	templruntime "github.com/a-h/templ/runtime"
)

// templTime is what templ's generated code wrote for
// <time datetime={ datetime(t) }>{ shown(t) }</time>.
func templTime(t *testing.T, m time.Time, shown func(time.Time) string) string {
	t.Helper()
	attr, err := templruntime.NewAttributeExpression(datetime(m)).Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return `<time datetime="` + attr + `">` + templText(shown(m)) + `</time>`
}

// timeElement and timeOfDayElement write what the templates wrote before
// them, for any moment: other zones, the years Format writes other than as
// four digits, every month, day, hour, minute and second.
func TestTimeElementIsTheTemplate(t *testing.T) {
	moments := []time.Time{
		time.Date(2026, 12, 6, 8, 16, 49, 7e6, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)),
		time.Date(2026, 1, 1, 0, 30, 0, 0, time.FixedZone("", 5*3600+1800)),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(999, 3, 4, 5, 6, 7, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 6, 1, 12, 0, 0, 0, time.UTC),
		{},
	}
	for s := range 24 * 3600 {
		moments = append(moments, time.Date(2026, 12, 6, 0, 0, s, 0, time.UTC))
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		moments = append(moments, time.Unix(r.Int64N(400*365*86400)-100*365*86400, r.Int64N(1e9)))
	}
	for y := range 10001 {
		moments = append(moments, time.Date(y, time.Month(1+y%12), 1+y%31, y%24, y%60, y%60, 0, time.UTC))
	}
	for _, m := range moments {
		for _, c := range []struct {
			e     timeTag
			shown func(time.Time) string
		}{{timeElement(m), clock}, {timeOfDayElement(m), timeOfDay}} {
			want := templTime(t, m, c.shown)
			var b bytes.Buffer
			if err := c.e.Render(context.Background(), &b); err != nil || b.String() != want {
				t.Fatalf("%+v wrote %q, %v; the template wrote %q", c.e, b.String(), err, want)
			}
			b.Reset()
			if err := c.e.Render(context.Background(), onlyWriter{&b}); err != nil || b.String() != want {
				t.Fatalf("%+v to a plain io.Writer wrote %q, %v; want %q", c.e, b.String(), err, want)
			}
		}
	}
}

func TestTimeElementReturnsTheWriteError(t *testing.T) {
	m := time.Date(2026, 12, 6, 8, 16, 49, 0, time.UTC)
	for _, e := range []timeTag{timeElement(m), timeOfDayElement(m)} {
		for n := 1; ; n++ {
			w := &failWriter{n: n}
			err := e.Render(context.Background(), w)
			if w.n > 0 { // fewer than n writes: all of them were tried
				if err != nil {
					t.Errorf("%+v: %v with no write failing", e, err)
				}
				break
			}
			if !errors.Is(err, errWrite) {
				t.Errorf("%+v, write %d failing: Render returned %v", e, n, err)
			}
		}
	}
}

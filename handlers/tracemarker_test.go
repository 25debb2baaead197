package handlers

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/views"
)

// lastTraceMarker finds the last trace slot as bytes.LastIndex does.
func TestLastTraceMarker(t *testing.T) {
	m := string(traceMarker)
	for _, page := range []string{
		"", "!", m, "x" + m, m + "!", "Hello!<p>" + m + "</aside><footer>Wow!</footer>",
		m + "<p>!!</p>" + m + "<footer>!</footer>", "<!--other-->" + m[:len(m)-1], "<!!--redis-trace-->",
		strings.Repeat("<p>a!b</p>", 500) + m + strings.Repeat("<i>!</i>", 100),
	} {
		if got, want := lastTraceMarker([]byte(page)), bytes.LastIndex([]byte(page), traceMarker); got != want {
			t.Errorf("%.40q: %d, want %d", page, got, want)
		}
	}
}

// fillTrace leaves the page around the slot as it was, whether the trace
// fits in the buffer's room or the buffer grows.
func TestFillTraceKeepsThePageAroundIt(t *testing.T) {
	ta := newTestApp(t)
	r := httptest.NewRequest(http.MethodGet, "/profile", nil)
	for _, page := range []string{
		"<main>a</main>" + views.TraceMarker + "<footer>b</footer></html>",
		views.TraceMarker,
		"head" + views.TraceMarker,
		views.TraceMarker + strings.Repeat("tail ", 2000),
		strings.Repeat("<!-- ! -->", 300) + views.TraceMarker + "<p>!</p>",
	} {
		for _, room := range []int{0, 64 << 10} {
			body := bytes.NewBuffer(make([]byte, 0, len(page)+room))
			body.WriteString(page)
			ta.app.fillTrace(r, body, nil)
			i := strings.LastIndex(page, views.TraceMarker)
			var want bytes.Buffer
			want.WriteString(page[:i])
			views.WriteTrace(&want, views.Trace{Method: http.MethodGet, Path: "/profile", InProcess: ta.app.InProcess}, ta.app.Redis())
			want.WriteString(page[i+len(views.TraceMarker):])
			if body.String() != want.String() {
				t.Errorf("page %.40q (room %d):\n got %.200q\nwant %.200q", page, room, body.String(), want.String())
			}
		}
	}
}

// lastBang finds what bytes.LastIndexByte finds, at every length and
// position, beside every other byte.
func TestLastBangIsLastIndexByte(t *testing.T) {
	for n := range 40 {
		for pos := -1; pos < n; pos++ {
			for _, other := range []byte{0, ' ', '!' - 1, '!' + 1, 0x80, 0xa1, 0xff} {
				b := bytes.Repeat([]byte{other}, n)
				if pos >= 0 {
					b[pos] = '!'
				}
				if got, want := lastBang(b), bytes.LastIndexByte(b, '!'); got != want {
					t.Fatalf("%q: %d, want %d", b, got, want)
				}
			}
		}
	}
}

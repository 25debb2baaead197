package handlers

import (
	"bytes"
	"strings"
	"testing"
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

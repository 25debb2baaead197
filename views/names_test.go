package views

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// live.js takes every name it shares with the templates from its script
// tag (liveNames): a name written into the script again could drift from
// views/names.go without any test noticing.
func TestLiveScriptTakesItsNamesFromThePage(t *testing.T) {
	src, err := os.ReadFile("../static/live.js")
	if err != nil {
		t.Fatal(err)
	}
	var names map[string]string
	if err := json.Unmarshal([]byte(liveNames), &names); err != nil {
		t.Fatal(err)
	}
	code := string(src)
	for _, line := range strings.Split(code, "\n") { // comments may name things
		if i := strings.Index(line, "//"); i >= 0 && !strings.Contains(line[:i], "'") {
			code = strings.Replace(code, line[i:], "", 1)
		}
	}
	for _, m := range regexp.MustCompile(`\bN\.(\w+)`).FindAllStringSubmatch(code, -1) {
		if _, ok := names[m[1]]; !ok {
			t.Errorf("live.js uses N.%s, which liveNames does not give it", m[1])
		}
	}
	literals := regexp.MustCompile(`'([^']*)'`).FindAllStringSubmatch(code, -1)
	for key, name := range names {
		for _, lit := range literals {
			if strings.Contains(lit[1], name) && (lit[1] == name || strings.ContainsAny(name, "-:")) {
				t.Errorf("live.js writes %q itself (liveNames[%q]): take it from N.%s", lit[0], key, key)
			}
		}
	}
	// It is not htmx's SSE extension and must not look like it.
	for _, borrowed := range []string{"sse-connect", "sse-swap", "htmx:sse", "'sse:'"} {
		if strings.Contains(code, borrowed) {
			t.Errorf("live.js uses %s, a name of htmx's SSE extension", borrowed)
		}
	}
}

package inspect

import "testing"

// The panel prints a value the same way whatever order its writer (Go's
// encoder, the count script's cjson) put the keys in.
func TestPrettyHasOneOrder(t *testing.T) {
	const want = "{\n  \"deadline\": \"2026-12-06T05:00:00.123Z\",\n  \"values\": {\n    \"origin\": {\n      \"at\": 1764590465123,\n      \"process\": \"9c6dd3\"\n    },\n    \"user\": \"<b>\",\n    \"views\": 12345678901234567\n  }\n}"
	for _, in := range []string{
		`{"deadline":"2026-12-06T05:00:00.123Z","values":{"views":12345678901234567,"user":"<b>","origin":{"process":"9c6dd3","at":1764590465123}}}`,
		`{"values":{"origin":{"at":1764590465123,"process":"9c6dd3"},"user":"\u003cb\u003e","views":12345678901234567},"deadline":"2026-12-06T05:00:00.123Z"}`,
	} {
		if got := Pretty([]byte(in)); got != want {
			t.Errorf("Pretty(%s) =\n%s\nwant\n%s", in, got, want)
		}
	}
	if got := Pretty([]byte("not json")); got != "not json" {
		t.Errorf("Pretty of a non-JSON value = %q, want it as is", got)
	}
}

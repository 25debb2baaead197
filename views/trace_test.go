package views

import (
	"bytes"
	"testing"
)

// An argument is shown as MONITOR prints it, except what a page must not
// hold whole: a session token (anywhere in it), a bcrypt hash, and the end
// of a long value. Each cut ends in "…".
func TestTraceArgumentsAsMonitorPrintsThem(t *testing.T) {
	const token = "NI0i3iT7vM3Lo45HXvXmGg15RKnE23Ip-T3w-JOm0bs"
	for _, tc := range []struct {
		name, arg string
		partial   bool
		want      string
	}{
		{"a short argument, whole", "GET", false, `"GET"`},
		{"quotes, backslashes and control bytes escaped as MONITOR does", "a\"b\\c\nd\te\x01", false, `"a\"b\\c\nd\te\x01"`},
		{"HTML escaped", "<b>&", false, `"&lt;b&gt;&amp;"`},
		{"a script's SHA-1, whole", "3e31878e103408301ee2c09b3fcb7860e9ca3629", false, `"3e31878e103408301ee2c09b3fcb7860e9ca3629"`},
		{"a session key: its token cut", "sess:" + token, false, `"sess:NI0i3i…"`},
		{"a token inside a value", `{"token":"` + token + `","ip":"::1"}`, false, `{"token":"NI0i3i…","ip":"::1"}`},
		{"a session ID, in a channel and in a value", "live:sess:d62dcb87c09d6de7", false, `"live:sess:d62dcb…"`},
		{"a session ID in a value", `[{"id":"d62dcb87c09d6de7","views":2}]`, false, `[{"id":"d62dcb…","views":2}]`},
		{"a bcrypt hash", `{"hash":"$2a$10$0MS5/nUaQuKAIZBo.9.I6eavt.Kzl50DHh3GcRoKlZ5xQ1iTh5RLC","x":1}`, false, `{"hash":"$2a$10$…","x":1}`},
		{"an account: its hash cut, and the rest with the same one ellipsis", `{"username":"user2","role":"student","hash":"$2a$04$0MS5/nUaQuKAIZBo.9.I6eavt.Kzl50DHh3GcRoKlZ5xQ1iTh5RLC","created":1796545009007}`, false,
			`{"username":"user2","role":"student","hash":"$2a$04$…`},
		{"a long value, cut", `{"deadline":"2026-12-07T08:12:56.591Z","values":{"views":3}}`, false, `{"deadline":"2026-12-07T08:12:56.591Z","values":…`},
		{"what a script kept of a long argument: a token's start at its end is cut", `{"token":"NI0i3iT7vM3Lo45`, true, `{"token":"NI0i3i…`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			appendArg(&b, tc.arg, tc.partial)
			want := tc.want
			if want[0] != '"' {
				want = `"` + jsonRepr(want) + `"`
			}
			if got := b.String(); got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// jsonRepr escapes the quotes of a JSON text as MONITOR prints them.
func jsonRepr(s string) string {
	return string(bytes.ReplaceAll([]byte(s), []byte(`"`), []byte(`\"`)))
}

// A command refused before it was sent is listed as not sent, with why and
// no time: MONITOR never printed it. One sent and failed shows its time.
// The sentence above the list says what MONITOR printed: the commands but
// those not sent, or none of them.
func TestACommandNotSentSaysSo(t *testing.T) {
	failed := TraceCommand{Args: []string{"GET", "k"}, Reply: "failed", Took: 1e6}
	refused := TraceCommand{Args: []string{"INCR", "n"}, Unsent: true, Reply: "not sent: the master has no replica in sync"}
	for _, tc := range []struct {
		name string
		cmds []TraceCommand
		want []string
	}{
		{"one sent, one not", []TraceCommand{failed, refused}, []string{
			`</code>, in this order, as <code>redis-cli MONITOR</code> prints them, but for those marked not sent, which it does not print. `,
			`<li data-testid="trace-command"><code>"GET" "k"</code> → failed, 1.0 ms</li>`,
			`<li data-testid="trace-command" data-sent="no"><code>"INCR" "n"</code> → not sent: the master has no replica in sync</li>`,
		}},
		{"none sent", []TraceCommand{refused}, []string{
			`sent nothing to the Redis at <code data-testid="redis-server">127.0.0.1:6379</code>: <code>redis-cli MONITOR</code> prints none of these. `,
			`<li data-testid="trace-command" data-sent="no"><code>"INCR" "n"</code> → not sent: the master has no replica in sync</li>`,
		}},
		{"all sent", []TraceCommand{failed}, []string{
			`</code>, in this order, as <code>redis-cli MONITOR</code> prints them. `,
		}},
	} {
		var b bytes.Buffer
		WriteTrace(&b, Trace{Method: "GET", Path: "/count", Commands: tc.cmds}, RedisServer{Where: "127.0.0.1:6379"})
		for _, want := range tc.want {
			if !bytes.Contains(b.Bytes(), []byte(want)) {
				t.Errorf("%s: trace lacks %s\n%s", tc.name, want, b.String())
			}
		}
	}
}

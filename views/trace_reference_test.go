package views

import (
	"bytes"
	"html"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// appendArgReference and writeReprReference are appendArg and writeRepr as
// they were before they wrote runs of bytes at once (866d219) and looked
// bytes up in a table (89e1760): a byte at a time, plainly. The fast pair
// must write the same bytes for any argument.
func appendArgReference(b *bytes.Buffer, arg string, partial bool) {
	isToken := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	b.WriteByte('"')
	shown, endsCut := 0, false
	for i := 0; i < len(arg); {
		if shown >= shownArg {
			if !endsCut {
				b.WriteString(`…`)
			}
			b.WriteByte('"')
			return
		}
		endsCut = false
		if isToken(arg[i]) && (i == 0 || !isToken(arg[i-1])) {
			end := i
			for end < len(arg) && isToken(arg[end]) {
				end++
			}
			if end-i >= tokenRun || end-i == idRun && isHex(arg[i:end]) || partial && end == len(arg) && end-i > 6 {
				writeReprReference(b, arg[i:i+6])
				b.WriteString(`…`)
				shown += 7
				i, endsCut = end, true
				continue
			}
		}
		if bcryptAt(arg, i) {
			writeReprReference(b, arg[i:i+7])
			b.WriteString(`…`)
			i += 7
			for i < len(arg) && (isToken(arg[i]) || arg[i] == '.' || arg[i] == '/') {
				i++
			}
			shown += 8
			endsCut = true
			continue
		}
		writeReprReference(b, arg[i:i+1])
		shown++
		i++
	}
	if partial && !endsCut {
		b.WriteString(`…`)
	}
	b.WriteByte('"')
}

func writeReprReference(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '<':
			b.WriteString(`&lt;`)
		case '>':
			b.WriteString(`&gt;`)
		case '&':
			b.WriteString(`&amp;`)
		default:
			if c >= 0x20 && c <= 0x7e {
				b.WriteByte(c)
			} else {
				b.WriteString(`\x`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			}
		}
	}
}

// sameAsReference reports how appendArg and appendRepr differ from the
// reference on arg ("" when they agree).
func sameAsReference(arg string, partial bool) string {
	var got, want bytes.Buffer
	got.Write(appendRepr(nil, arg))
	writeReprReference(&want, arg)
	if got.String() != want.String() {
		return "appendRepr: got " + got.String() + ", want " + want.String()
	}
	got.Reset()
	want.Reset()
	got.WriteString("before ") // appendArg appends to what the buffer holds
	want.WriteString("before ")
	appendArg(&got, arg, partial)
	appendArgReference(&want, arg, partial)
	if got.String() != want.String() {
		return "appendArg: got " + got.String() + ", want " + want.String()
	}
	if n := got.Len() - len("before "); n > argBytes {
		return "appendArg wrote " + strconv.Itoa(n) + " bytes, more than argBytes: its Grow falls short"
	}
	return ""
}

// The fast appendArg and appendRepr write what the reference writes: for
// every byte alone and beside a token character, and for random arguments
// built from what traces hold (tokens, session IDs, bcrypt hashes, JSON,
// escapes, bytes outside ASCII), around the 48-byte cut.
func TestTraceArgumentSameAsReference(t *testing.T) {
	check := func(arg string) {
		t.Helper()
		for _, partial := range []bool{false, true} {
			if diff := sameAsReference(arg, partial); diff != "" {
				t.Fatalf("arg %q, partial %v: %s", arg, partial, diff)
			}
		}
	}
	for c := range 256 {
		check(string([]byte{byte(c)}))
		check("a" + string([]byte{byte(c)}) + "b")
		check(strings.Repeat("x", 47) + string([]byte{byte(c)}) + "yz")
		check(strings.Repeat(string([]byte{byte(c)}), 3*shownArg)) // the longest an argument writes
		check(strings.Repeat("&", shownArg-1) + strings.Repeat("a", tokenRun) + string([]byte{byte(c)}))
	}
	pieces := []string{
		"NI0i3iT7vM3Lo45HXvXmGg15RKnE23Ip-T3w-JOm0bs", "d62dcb87c09d6de7", "D62DCB87C09D6DE7", "d62dcb87c09d6de",
		"$2a$10$0MS5/nUaQuKAIZBo.9.I6eavt.Kzl50DHh3GcRoKlZ5xQ1iTh5RLC", "$2b$", "$2y$12$", "$", "$2",
		"sess:", `{"token":"`, `","ip":"::1"}`, `"`, `\`, "\n\r\t\a\b", "<b>&amp;", "\x00\x01\x7f\x80\xff", "é…",
		"a", "-", "_", "9", " ", ".", "/", ":", "abcdef", "0123456789", "GET", "EVALSHA",
	}
	rng := rand.New(rand.NewPCG(23, 2026))
	for range 200_000 {
		var b strings.Builder
		for n := rng.IntN(8); n >= 0; n-- {
			p := pieces[rng.IntN(len(pieces))]
			if rng.IntN(4) == 0 {
				p = p[:rng.IntN(len(p)+1)]
			}
			b.WriteString(p)
		}
		check(b.String())
	}
}

func FuzzTraceArgumentSameAsReference(f *testing.F) {
	f.Add("sess:NI0i3iT7vM3Lo45HXvXmGg15RKnE23Ip-T3w-JOm0bs", false)
	f.Add(`{"hash":"$2a$10$0MS5/nUaQuKAIZBo.9.I6eavt.Kzl50DHh3GcRoKlZ5xQ1iTh5RLC","x":1}`, false)
	f.Add(`[{"id":"d62dcb87c09d6de7","views":2}]`, true)
	f.Add("a\"b\\c\nd\te\x01<&>\xff", true)
	f.Fuzz(func(t *testing.T, arg string, partial bool) {
		if diff := sameAsReference(arg, partial); diff != "" {
			t.Fatalf("arg %q, partial %v: %s", arg, partial, diff)
		}
	})
}

// writeEscaped writes what html.EscapeString returns, for every byte and
// for random text.
func TestWriteEscapedIsHTMLEscapeString(t *testing.T) {
	check := func(s string) {
		t.Helper()
		var b bytes.Buffer
		writeEscaped(&b, s)
		if want := html.EscapeString(s); b.String() != want {
			t.Fatalf("writeEscaped(%q) = %q, want %q", s, b.String(), want)
		}
	}
	for c := range 256 {
		check(string([]byte{byte(c)}))
		check("a" + string([]byte{byte(c)}) + "b&")
	}
	rng := rand.New(rand.NewPCG(6, 12))
	const alphabet = "ab <>&'\"é\x00/"
	for range 20_000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(string(b))
	}
}

// appendArg writes a run of token characters as it is, without appendRepr:
// that holds only while every token character is one appendRepr leaves alone.
func TestTokenCharactersArePlain(t *testing.T) {
	for c := range 256 {
		if isTokenChar(byte(c)) && byteClass[c]&plainByte == 0 {
			t.Errorf("token character %q is not plain: appendArg must repr its runs", byte(c))
		}
	}
}

package sessions

import "testing"

// plainStringReference is plainString as it was, a byte at a time.
func plainStringReference(b []byte) (end int, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return 0, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return 0, false
		}
	}
	return 0, false
}

// plainString's table passes exactly the bytes the byte-at-a-time rule
// passed: every byte, at the start, middle and end of a string, closed or not.
func TestPlainStringIsTheByteRule(t *testing.T) {
	for c := range 256 {
		x := string([]byte{byte(c)})
		for _, in := range []string{`"` + x, `"` + x + `"`, `"a` + x + `b"`, `"` + x + `ab":1`, `"ab` + x, `"` + x + x + `"`} {
			s := scanner{b: []byte(in)}
			ok := s.plainString()
			end, want := plainStringReference([]byte(in))
			if ok != want || ok && s.i != end {
				t.Errorf("%q: ok %v at %d, the byte rule says %v at %d", in, ok, s.i, want, end)
			}
		}
	}
}

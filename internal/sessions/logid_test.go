package sessions

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// logIDReference is LogID.Of as crypto/hmac computes it.
func logIDReference(salt []byte, token string) string {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil)[:6])
}

// A token's log id is its salted HMAC-SHA256, whatever the lengths of the
// salt and the token (a salt longer than a block is hashed first, a token
// longer than the buffer goes to the heap).
func TestLogIDIsHMAC(t *testing.T) {
	for _, n := range []int{0, 1, 16, 32, 63, 64, 65, 200} {
		salt := []byte(strings.Repeat("s\x00\xff", n)[:n])
		for _, m := range []int{1, 43, 127, 128, 129, 1000} {
			token := strings.Repeat("abc\x00\x80xyz", m)[:m]
			want := logIDReference(salt, token)
			if got := LogID(salt).Of(token); got != want {
				t.Errorf("salt of %d bytes, token of %d: %s, want %s", n, m, got, want)
			}
			if got := LogID(salt).Func()(token); got != want {
				t.Errorf("Func, salt of %d bytes, token of %d: %s, want %s", n, m, got, want)
			}
		}
	}
	if got := LogID("salt").Of(""); got != "-" {
		t.Errorf(`no token: %q, want "-"`, got)
	}
	token := "P8k4m-3Yx2G3c5a0sW9zQe1Lr7Tn6Vb4Hf2Jd8Kq0Uo"
	of := LogID("0123456789abcdef").Func()
	if a := testing.AllocsPerRun(100, func() { of(token) }); a > 5 {
		t.Errorf("%v allocations per log id, want 5 (the two digests' clones, the token's bytes and the inner sum passed to them, its string)", a)
	}
}

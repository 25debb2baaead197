package sessions

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// A session's ID is the first 16 hex digits of SHA-256 of its token, for
// tokens of any length (past the array ID hashes from as well).
func TestIDIsSHA256(t *testing.T) {
	for n := range 200 {
		token := strings.Repeat("Zk3-_q\x00\xff", 30)[:n]
		sum := sha256.Sum256([]byte(token))
		if got, want := ID(token), hex.EncodeToString(sum[:8]); got != want {
			t.Errorf("token of %d bytes: %s, want %s", n, got, want)
		}
	}
	token := "P8k4m-3Yx2G3c5a0sW9zQe1Lr7Tn6Vb4Hf2Jd8Kq0Uo"
	if a := testing.AllocsPerRun(100, func() { ID(token) }); a > 1 {
		t.Errorf("%v allocations per ID, want 1 (its string)", a)
	}
}

package redistrace

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"strings"
)

func sha1hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func indexSpace(s string) int { return strings.IndexByte(s, ' ') }

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

package sessions

import "strings"

// IsWrongType says whether err is Redis's WRONGTYPE: a command met a key
// holding another type of value than it works on.
func IsWrongType(err error) bool {
	return err != nil && strings.Contains(err.Error(), "WRONGTYPE")
}

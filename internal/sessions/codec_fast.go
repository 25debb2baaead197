package sessions

import (
	"encoding/json"
	"time"
)

// decodeKnownFast decodes the values every request reads without reflection
// or a second validating pass of encoding/json. Decode has already checked
// that raw is one valid JSON value, so calling the type's own decoder
// directly gives what json.Unmarshal would; anything unusual (a views that
// is not a plain integer, a decoding error) returns ok=false and takes the
// general path in decodeValue, which then decides, errors included.
func decodeKnownFast(key string, raw []byte) (any, bool) {
	switch key {
	case KeyViews:
		return plainInt(raw)
	case KeySeen:
		var t time.Time
		if len(raw) > 0 && raw[0] == '"' && t.UnmarshalJSON(raw) == nil {
			return t, true
		}
	case KeyRememberMe:
		switch string(raw) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	case KeyUser:
		var u User
		if json.Unmarshal(raw, &u) == nil {
			return u, true
		}
	}
	return nil, false
}

// plainInt reads a JSON integer of at most 18 digits (no fraction, no
// exponent), which fits an int on every platform Go runs this on.
func plainInt(raw []byte) (any, bool) {
	digits := raw
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 {
		return nil, false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, false
		}
		n = n*10 + int(c-'0')
	}
	if raw[0] == '-' {
		n = -n
	}
	return n, true
}

package sessions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Codec stores scs session data as readable JSON, so `redis-cli GET sess:<token>`
// shows what the tutorial describes; values are decoded back into their Go
// types by key (decodeValue), other integers as int.
type Codec struct{}

// Keys of the values the app keeps in a session.
const (
	KeyUser       = "user"
	KeyViews      = "views"
	KeySeen       = "seen"         // last activity, refreshed at most every TouchEvery
	KeyOrigin     = "origin"       // which process and instance created the session, and when
	KeyRememberMe = "__rememberMe" // scs's own key for RememberMe
	KeyLab        = "lab"          // the lab's evidence and switches (see Lab)
	KeyCounted    = "counted"      // the process that counted last (see Counted)
)

// User is who a session belongs to, as the tutorial stores it, with the
// account's credential generation at login (accounts.NewGeneration).
type User struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	Gen      string `json:"gen,omitempty"`
}

// Origin is where and when a session began, so a later page can show it
// outlived its process or came from another instance.
type Origin struct {
	Process  string    `json:"process"`  // the creating process's short id
	Instance string    `json:"instance"` // the creating instance's name
	At       time.Time `json:"at"`
}

type envelope struct {
	Deadline time.Time                  `json:"deadline"`
	Values   map[string]json.RawMessage `json:"values"`
}

// Encode implements scs.Codec.
func (Codec) Encode(deadline time.Time, values map[string]any) ([]byte, error) {
	b, err := encodePlain(deadline, values)
	if err != nil {
		return nil, fmt.Errorf("sessions: encode: %w", err)
	}
	return b, nil
}

// ErrUnreadable: a stored session's value is not one this codec wrote (a
// hand edit with redis-cli, another program's write).
var ErrUnreadable = errors.New("sessions: stored value is not a session")

// Decode implements scs.Codec. It rejects anything that is not a session
// envelope, so a corrupt value is never taken for an empty session (and
// saved over); its errors are ErrUnreadable.
func (Codec) Decode(b []byte) (time.Time, map[string]any, error) {
	if deadline, values, ok := decodePlain(b); ok {
		return deadline, values, nil
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return time.Time{}, nil, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	if env.Deadline.IsZero() || env.Values == nil {
		return time.Time{}, nil, fmt.Errorf("%w: no deadline or values", ErrUnreadable)
	}
	// Encode writes the deadline in UTC with a four-digit year; a deadline
	// it could not write back is not one of ours (found by FuzzCodecDecode).
	if y := env.Deadline.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, nil, fmt.Errorf("%w: deadline out of range", ErrUnreadable)
	}
	values := make(map[string]any, len(env.Values))
	for k, raw := range env.Values {
		v, err := decodeValue(k, raw)
		if err != nil {
			return time.Time{}, nil, fmt.Errorf("%w: value %q: %w", ErrUnreadable, k, err)
		}
		values[k] = v
	}
	return env.Deadline, values, nil
}

// decodeValue decodes the app's values straight into their Go types, without
// reflection (every request runs it); any other as JSON does, integers as int.
func decodeValue(key string, raw json.RawMessage) (any, error) {
	switch key {
	case KeyUser:
		var u User
		err := json.Unmarshal(raw, &u)
		return u, err
	case KeyOrigin:
		var o Origin
		err := json.Unmarshal(raw, &o)
		return o, err
	case KeyLab:
		var l Lab
		err := json.Unmarshal(raw, &l)
		return l, err
	case KeyCounted:
		var c Counted
		err := json.Unmarshal(raw, &c)
		return c, err
	case KeySeen:
		// raw is valid JSON already; Unmarshal would check it again.
		var t time.Time
		err := unmarshalTime(&t, raw)
		return t, err
	case KeyViews:
		if n, ok := plainInt(raw); ok {
			return n, nil
		}
		var n int
		err := json.Unmarshal(raw, &n)
		return n, err
	case KeyRememberMe:
		switch string(raw) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		var b bool
		err := json.Unmarshal(raw, &b)
		return b, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return int(i), nil
		}
		f, err := n.Float64()
		if f == 0 {
			f = 0 // -0 would be written as "-0" and read back as the int 0
		}
		return f, err
	}
	return v, nil
}

// plainInt reads a JSON number written as digits (and a sign), as Encode
// writes an int; anything else is left to encoding/json.
func plainInt(raw []byte) (int, bool) {
	if len(raw) == 0 || len(raw) > 18 {
		return 0, false
	}
	for i, c := range raw {
		if (c < '0' || c > '9') && !(i == 0 && c == '-' && len(raw) > 1) {
			return 0, false
		}
	}
	n, err := strconv.Atoi(string(raw))
	return n, err == nil
}

// timeFormat keeps stored times short and readable (millisecond precision).
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

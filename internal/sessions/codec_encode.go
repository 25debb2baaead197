package sessions

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// encodePlain writes what json.Marshal writes for Encode's envelope, the
// app's own value types by hand (every new session and login runs it;
// encoding/json's reflection was a tenth of a first count's allocations);
// any other value goes through json.Marshal (TestEncodeSameAsMarshal).
// The bytes are the same, so the count scripts still find the count last.
func encodePlain(deadline time.Time, values map[string]any) ([]byte, error) {
	b := make([]byte, 0, 320)
	b = append(b, `{"deadline":"`...)
	b = deadline.UTC().AppendFormat(b, timeFormat)
	b = append(b, `","values":{`...)
	// json.Marshal writes a map's members sorted by key.
	keys := make([]string, 0, 8)
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, values[k]); err != nil {
			return nil, err
		}
	}
	return append(b, "}}"...), nil
}

// appendValue writes v as json.Marshal does.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case string:
		return appendJSONString(b, v), nil
	case time.Time:
		if t, ok := appendJSONTime(b, v); ok {
			return t, nil
		}
	case User:
		b = append(b, `{"username":`...)
		b = appendJSONString(b, v.Username)
		b = append(b, `,"role":`...)
		b = appendJSONString(b, v.Role)
		if v.Gen != "" { // omitempty
			b = append(b, `,"gen":`...)
			b = appendJSONString(b, v.Gen)
		}
		return append(b, '}'), nil
	case Origin:
		mark := len(b)
		b = append(b, `{"process":`...)
		b = appendJSONString(b, v.Process)
		b = append(b, `,"instance":`...)
		b = appendJSONString(b, v.Instance)
		b = append(b, `,"at":`...)
		if t, ok := appendJSONTime(b, v.At); ok {
			return append(t, '}'), nil
		}
		b = b[:mark]
	case Counted:
		b = append(b, `{"process":`...)
		b = appendJSONString(b, v.Process)
		b = append(b, `,"instance":`...)
		b = appendJSONString(b, v.Instance)
		return append(b, '}'), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, raw...), nil
}

// appendJSONTime writes t as its MarshalJSON does; ok false where that
// would fail (a year it cannot write), for json.Marshal to say why.
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return nil, false
	}
	return append(b, '"'), true
}

// appendJSONString writes s as json.Marshal does: plain strings as they
// are, anything to escape through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			raw, _ := json.Marshal(s) // invalid UTF-8 is replaced, never refused
			return append(b, raw...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

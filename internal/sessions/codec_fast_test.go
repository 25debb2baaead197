package sessions

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The fast path for the values every request reads must decode exactly as
// the general path does, or step aside.
func TestFastDecodeGivesWhatTheGeneralPathGives(t *testing.T) {
	cases := map[string][]string{
		KeyViews:      {"0", "3", "-7", "-0", "123456789012345678", "1234567890123456789", "1e2", "3.0", "null", `"3"`},
		KeySeen:       {`"2026-11-27T10:01:12.552Z"`, `"2026-11-27T10:01:12Z"`, `"2026-11-27T10:01:12.552+01:00"`, `"bad"`, `"2026-11-27T10:01:12\u002e552Z"`, "null", "3"},
		KeyRememberMe: {"true", "false", "null", "1"},
		KeyUser:       {`{"username":"alice","role":"student"}`, `{"USERNAME":"x"}`, "null", `{"username":1}`, "[]"},
	}
	for key, raws := range cases {
		for _, raw := range raws {
			p := reflect.New(fieldTypes[key])
			wantErr := json.Unmarshal([]byte(raw), p.Interface())
			got, ok := decodeKnownFast(key, []byte(raw))
			switch {
			case !ok:
			case wantErr != nil:
				t.Errorf("%s %s: fast path gave %#v, general path fails: %v", key, raw, got, wantErr)
			case !reflect.DeepEqual(got, p.Elem().Interface()):
				t.Errorf("%s %s: fast path gave %#v, general path %#v", key, raw, got, p.Elem().Interface())
			}
		}
	}
}

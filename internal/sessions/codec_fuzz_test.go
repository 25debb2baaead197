package sessions

import (
	"bytes"
	"testing"
)

// FuzzCodecDecode feeds the session decoder whatever Redis might hold (a
// corrupt, foreign or hostile value). Decode must never panic; what it
// accepts must encode again, and after that one normalization Encode∘Decode
// gives back the same bytes.
func FuzzCodecDecode(f *testing.F) {
	f.Add([]byte(`{"deadline":"2026-11-28T10:01:12.552Z","values":{"user":{"username":"alice","role":"student"},"views":3,"seen":"2026-11-27T10:01:12.552Z"}}`))
	f.Add([]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{}}`))
	f.Add([]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"__rememberMe":true,"x":[1,2.5,{"y":null}]}}`))
	f.Add([]byte(`{"deadline":"0000-01-01T00:30:00+01:00","values":{}}`))
	f.Add([]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"views":1e400}}`))
	f.Add([]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"other":-0.0}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	codec := Codec{}
	f.Fuzz(func(t *testing.T, b []byte) {
		deadline, values, err := codec.Decode(b)
		if err != nil {
			return
		}
		if deadline.IsZero() || values == nil {
			t.Fatalf("Decode accepted %q as a session without deadline or values", b)
		}
		once, err := codec.Encode(deadline, values)
		if err != nil {
			t.Fatalf("Decode accepted %q, but Encode refuses what it gave: %v", b, err)
		}
		d2, v2, err := codec.Decode(once)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) failed: %v\nencoded: %s", b, err, once)
		}
		twice, err := codec.Encode(d2, v2)
		if err != nil {
			t.Fatalf("second Encode failed: %v", err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("Encode∘Decode is not stable for %q:\n%s\n%s", b, once, twice)
		}
	})
}

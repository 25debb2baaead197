package sessions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// referenceDecode is Decode as it was before decodeValue decoded by key
// (reflection over a table of types, encoding/json for every value): the
// reference the faster one must agree with, on any input.
func referenceDecode(b []byte) (time.Time, map[string]any, error) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return time.Time{}, nil, err
	}
	if env.Deadline.IsZero() || env.Values == nil {
		return time.Time{}, nil, fmt.Errorf("not a session")
	}
	if y := env.Deadline.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, nil, fmt.Errorf("deadline out of range")
	}
	types := map[string]reflect.Type{
		KeyUser:       reflect.TypeFor[User](),
		KeyViews:      reflect.TypeFor[int](),
		KeySeen:       reflect.TypeFor[time.Time](),
		KeyOrigin:     reflect.TypeFor[Origin](),
		KeyRememberMe: reflect.TypeFor[bool](),
		KeyLab:        reflect.TypeFor[Lab](),
		KeyCounted:    reflect.TypeFor[Counted](),
	}
	values := map[string]any{}
	for k, raw := range env.Values {
		if t, ok := types[k]; ok {
			p := reflect.New(t)
			if err := json.Unmarshal(raw, p.Interface()); err != nil {
				return time.Time{}, nil, err
			}
			values[k] = p.Elem().Interface()
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return time.Time{}, nil, err
		}
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				v = int(i)
			} else {
				f, err := n.Float64()
				if err != nil {
					return time.Time{}, nil, err
				}
				if f == 0 {
					f = 0
				}
				v = f
			}
		}
		values[k] = v
	}
	return env.Deadline, values, nil
}

// sameAsReference fails unless Decode and referenceDecode agree on b:
// both refuse it, or both give the same deadline and values.
func sameAsReference(t *testing.T, b []byte) {
	t.Helper()
	d1, v1, err1 := Codec{}.Decode(b)
	d2, v2, err2 := referenceDecode(b)
	if (err1 == nil) != (err2 == nil) {
		t.Fatalf("%q: Decode error %v, reference error %v", b, err1, err2)
	}
	if err1 != nil {
		return
	}
	if !d1.Equal(d2) || !reflect.DeepEqual(v1, v2) {
		t.Fatalf("%q:\nDecode    %v %#v\nreference %v %#v", b, d1, v1, d2, v2)
	}
}

func TestDecodeSameAsReference(t *testing.T) {
	deadline, values := benchValues()
	stored, err := Codec{}.Encode(deadline, values)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{
		stored,
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"views":null,"seen":null,"__rememberMe":null,"user":null}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"views":-0,"x":-12,"y":123456789012345678901}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"views":3.5}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"views":"3"}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"views":1e3}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"views":99999999999999999999}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"seen":"yesterday"}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"seen":12}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"__rememberMe":1}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"__rememberMe":false,"Views":2,"origin":{"process":"a","at":"2026-11-28T10:01:12.5+01:00"}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"user":{"username":"al\u0069ce","Role":"x","extra":1},"origin":[]}}`),
	} {
		sameAsReference(t, b)
	}
}

// FuzzDecodeSameAsReference: on whatever Redis might hold, Decode agrees
// with the reference decoder.
func FuzzDecodeSameAsReference(f *testing.F) {
	deadline, values := benchValues()
	stored, _ := Codec{}.Encode(deadline, values)
	f.Add(stored)
	f.Add([]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"views":-0,"seen":null,"__rememberMe":true}}`))
	f.Fuzz(sameAsReference)
}

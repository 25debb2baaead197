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
		// As the count script's cjson writes it back: keys in another order.
		[]byte(`{"values":{"seen":"2026-12-06T08:16:49.007Z","views":1,"user":{"username":"bench","role":"student","gen":"55d93c06bd41e239"},"origin":{"instance":"test","at":"2026-12-06T08:16:49.007Z","process":"a1b2c3"}},"deadline":"2026-12-07T08:16:49.005Z"}`),
		// What the fast path (decodePlain) leaves to encoding/json.
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"user":{"username":"a","username":"b"}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"user":{"Username":"a","ROLE":"r"}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"user":{"username":"\u00e9l\"o\\","gen":null}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"user":{"username":"élo"},"origin":{"process":"p","at":"yesterday"}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"origin":{"process":"p","instance":"i","at":"2026-11-28T10:01:12Z","at":"2026-11-28T11:01:12Z"}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"views":1,"views":2}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","deadline":"2026-11-29T10:01:12Z","values":{}}`),
		[]byte(`{"Deadline":"2026-11-28T10:01:12Z","values":{}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{},"other":1}`),
		[]byte(`{ "deadline":"2026-11-28T10:01:12Z","values":{"views":2} }`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"views":007}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"views":-}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"x":[1,-0.5e+3,{"y":"\ud83d\ude00"},true,null,"\x"]}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":{"from":"a","process":"b","instance":"i","views":2,"at":1}},"counted":{"process":"b","instance":"i"}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"user":{"username":"al\u0069ce"}}}`),
		[]byte(`{"deadline":"0000-01-01T00:30:00+01:00","values":{}}`),
		[]byte(`{"deadline":"0001-01-01T00:00:00Z","values":{}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{}}x`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"seen":"2026-11-28T10:01:12Z"`),
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

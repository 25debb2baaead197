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
		mustEncode(t, labEveryField),
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
		// The lab's evidence (scanner.lab, counted) as the scripts' cjson
		// writes it, and what the fast path leaves to encoding/json.
		[]byte(labStored),
		[]byte(labScripts),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{},"counted":{}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":{},"httponly":{},"seen":{},"login":{}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":null,"counted":null}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":null,"seen":null,"no_renewal":null}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":[],"counted":"p"}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":{"views":2,"at":1.796571746544e+12}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":{"views":2.0,"at":1}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":{"views":-0,"at":-1}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":{"views":"2"}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"servers":{"at":999999999999999999,"views":-999999999999999999}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"servers":{"at":9223372036854775807,"views":-9223372036854775808}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"servers":{"at":9223372036854775808}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"seen":{"b1":1,"b2":1.5}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"seen":{"b1":1,"b1":2}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"seen":{"":1,"b\/1":2}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":{"from":"a\/b","process":"\u0070"}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":{"from":"a","from":"b"}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":{"from":"a"},"restart":{"process":"b"}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"no_renewal":true,"no_renewal":false}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"Restart":{"From":"a"},"NO_RENEWAL":true}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":{"from":"a","extra":[1]},"other":{}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"no_httponly":1,"login":{"renewed":"true"}}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{ "restart" : {"from":"a"} },"counted":{ "process":"p"}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"counted":{"process":"p","process":"q","instance":7}}}`),
		[]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"counted":{"process":"p","instance":"i","origin":"x"}}}`),
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
	f.Add([]byte(labStored))
	f.Add([]byte(labScripts))
	f.Add(mustEncode(f, labEveryField))
	f.Add([]byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"seen":{"b1":1,"b1":2},"restart":{"views":2.5e+1}},"counted":{"process":"a\/b"}}}`))
	f.Fuzz(sameAsReference)
}

// labScripts is what the scripts wrote for a lab with every field
// (TestScriptsLabDecodesOnTheFastPath's session, redis-server 7.0.15).
const labScripts = `{"deadline":"2099-01-01T00:00:00.000Z","values":{"lab":{"restart":{"at":1796572905364,"from":"p1","instance":"vm:8091","process":"p2","views":2},"servers":{"views":3,"from":"vm:8091","instance":"vm:8101","at":1796572905365,"process":"p3"},"browsers":{"at":1796571746544,"this":"Firefox on Linux: 3 views","other":"Chrome on Linux: 1 views"},"login":{"at":1796571746548,"renewed":true,"from":"f00d","browser":"b1","shared":true},"fixation":{"hidden":1796571746547},"seen":{"b2":1796571746550,"b1":1796571746549},"no_renewal":false,"httponly":{"hidden":1796571746545,"exposed":1796571746546},"no_httponly":true},"user":{"username":"alice","role":"student","gen":"ca63e16314151bde"},"counted":{"instance":"vm:8101","process":"p4"},"origin":{"at":"2026-01-01T00:00:00.000Z","instance":"vm:8091","process":"p1"},"views":4}}`

// labEveryField is a logged-in session with every Lab field set, as
// Encode (json.Marshal) writes it.
func labEveryField() (time.Time, map[string]any) {
	deadline, values := benchValues()
	values[KeyLab] = Lab{
		Browsers: &LabBrowsers{At: 1796571746544, This: "Firefox on Linux: 3 views", Other: "Chrome on Linux: 1 views"},
		Restart:  &LabMove{From: "89c18f", Process: "b7ca7e", Instance: "vm:8201", Views: 647989, At: 1796571859144},
		Servers:  &LabMove{From: "vm:8091", Process: "4ed79d", Instance: "vm:8101", Views: 57702, At: 1796571746544},
		HTTPOnly: &LabOutcomes{Hidden: 1796571746545, Exposed: 1796571746546},
		Fixation: &LabOutcomes{Exposed: 1796571746547},
		Login:    &LabLogin{At: 1796571746548, Browser: "b1", Renewed: true, From: "f00d", Shared: true},
		Seen:     map[string]int64{"b1": 1796571746549, "b2": 1796571746550},

		NoHTTPOnly: true,
		NoRenewal:  true,
	}
	values[KeyCounted] = Counted{Process: "5405d3", Instance: "vm:8201"}
	return deadline, values
}

// mustEncode is the session values makes, as Encode writes it.
func mustEncode(tb testing.TB, values func() (time.Time, map[string]any)) []byte {
	tb.Helper()
	b, err := Codec{}.Encode(values())
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// The lab's evidence as Encode and the scripts write it takes the fast
// path, not only agrees with the reference (as the general path would).
func TestDecodePlainReadsTheLab(t *testing.T) {
	for name, b := range map[string][]byte{
		"stored":         []byte(labStored),
		"scripts":        []byte(labScripts),
		"every field":    mustEncode(t, labEveryField),
		"empty switches": []byte(`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"no_httponly":false,"seen":{}},"counted":{}}}`),
	} {
		t.Run(name, func(t *testing.T) { readsTheLabByHand(t, b) })
	}
	_, values := labEveryField()
	_, got, err := Codec{}.Decode(mustEncode(t, labEveryField))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, values) {
		t.Errorf("Decode(Encode(every field)):\n got %#v\nwant %#v", got, values)
	}
}

// readsTheLabByHand fails unless the session b takes decodePlain and its
// lab and last counter the scanner's lab and counted (not decodeValue).
func readsTheLabByHand(t *testing.T, b []byte) {
	t.Helper()
	if _, _, ok := decodePlain(b); !ok {
		t.Errorf("decodePlain declined %s", b)
	}
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	byHand := func(raw []byte, read func(s *scanner) bool) bool {
		s := scanner{b: raw, src: string(raw)}
		return read(&s) && s.i == len(raw)
	}
	if !byHand(env.Values[KeyLab], func(s *scanner) bool { return s.lab(&Lab{}) }) {
		t.Errorf("the lab was not read by hand: %s", env.Values[KeyLab])
	}
	if !byHand(env.Values[KeyCounted], func(s *scanner) bool { return s.counted(&Counted{}) }) {
		t.Errorf("the last counter was not read by hand: %s", env.Values[KeyCounted])
	}
}

// A value not as Encode and cjson write it goes to decodeValue from its
// start, and the rest of the session stays on the fast path.
func TestDecodePlainReadsOnAfterADecline(t *testing.T) {
	for _, b := range []string{
		`{"deadline":"2026-11-28T10:01:12Z","values":{"user":{"username":"x","role":null},"views":2}}`,
		`{"deadline":"2026-11-28T10:01:12Z","values":{"origin":{"process":"p\/1","at":"2026-11-28T10:01:12Z"},"views":2}}`,
		`{"deadline":"2026-11-28T10:01:12Z","values":{"lab":{"restart":{"views":2,"extra":[1]}},"counted":{"process":"a","Instance":"i"}}}`,
	} {
		_, got, ok := decodePlain([]byte(b))
		if !ok {
			t.Errorf("decodePlain declined %s", b)
			continue
		}
		_, want, err := referenceDecode([]byte(b))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\ndecodePlain %#v\nreference   %#v (%v)", b, got, want, err)
		}
	}
}

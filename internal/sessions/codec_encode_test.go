package sessions

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"
)

// encodeReference is what Encode wrote through encoding/json alone;
// TestEncodeSameAsMarshal and FuzzEncodeSameAsMarshal hold encodePlain to it.
func encodeReference(deadline time.Time, values map[string]any) ([]byte, error) {
	v := struct {
		Deadline string         `json:"deadline"`
		Values   map[string]any `json:"values"`
	}{deadline.UTC().Format(timeFormat), values}
	if v.Values == nil {
		v.Values = map[string]any{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("sessions: encode: %w", err)
	}
	return b, nil
}

// sameEncodingAsMarshal: Encode writes what encoding/json wrote, byte for
// byte, and fails where it failed.
func sameEncodingAsMarshal(t *testing.T, deadline time.Time, values map[string]any) {
	t.Helper()
	got, err := Codec{}.Encode(deadline, values)
	want, wantErr := encodeReference(deadline, values)
	switch {
	case (err != nil) != (wantErr != nil):
		t.Fatalf("%v %#v:\nEncode     %s, %v\nreference  %s, %v", deadline, values, got, err, want, wantErr)
	case err != nil:
		if err.Error() != wantErr.Error() {
			t.Fatalf("%#v: Encode says %q, the reference %q", values, err, wantErr)
		}
	case !bytes.Equal(got, want):
		t.Fatalf("%v %#v:\nEncode     %s\nreference  %s", deadline, values, got, want)
	}
}

func TestEncodeSameAsMarshal(t *testing.T) {
	now := time.Date(2026, 12, 6, 14, 21, 7, 123456789, time.UTC)
	east := time.FixedZone("", 5*3600+30*60)
	west := time.FixedZone("", -(3*3600 + 17)) // seconds in the offset
	deadline, logged := benchValues()
	odd := []string{"", "alice", `a"b`, `a\b`, "<script>&", "é", "\x00", "\x1f", "\x7f", "\xff", "a\u2028b\u2029", "\ufffd"}
	cases := []struct {
		deadline time.Time
		values   map[string]any
	}{
		{deadline, logged},
		{deadline, nil},
		{deadline, map[string]any{}},
		// A new visitor's first count, as the app stores it.
		{now.Add(30 * time.Minute), map[string]any{KeyOrigin: Origin{Process: "6d5dcf", Instance: "vm:8080", At: now}, KeySeen: now, KeyViews: 1}},
		{now.In(east), map[string]any{KeySeen: time.Now(), KeyViews: -7, KeyRememberMe: true}},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), map[string]any{KeyRememberMe: false}},
		{time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), map[string]any{KeyViews: math.MaxInt}},
		{time.Time{}, map[string]any{KeyViews: math.MinInt}},
		{deadline, map[string]any{KeyOrigin: Origin{At: now.In(west)}, KeySeen: now.In(east)}},
		{deadline, map[string]any{KeyOrigin: Origin{}, KeyUser: User{}, KeyCounted: Counted{}}},
		{deadline, map[string]any{KeyLab: Lab{Seen: map[string]int64{"b<1>": 2}, NoRenewal: true}, KeyCounted: Counted{Process: "a", Instance: "b"}}},
		{deadline, map[string]any{"float": 1.5, "big": int64(1) << 62, "nil": nil, "list": []any{"x", 1}, "obj": map[string]any{"z": 1, "a": "<"}, "raw": json.RawMessage(` {"a" : 1} `), "ptr": &User{Username: "p"}}},
		{deadline, map[string]any{"b": 1, "a": 2, "__rememberMe": true, "Z": 3, "é": 4, "<": 5, "": 6, "views": 7}},
		// What encoding/json refuses, Encode refuses.
		{deadline, map[string]any{KeySeen: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{deadline, map[string]any{KeyOrigin: Origin{At: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}},
		{deadline, map[string]any{KeySeen: now.In(time.FixedZone("", 24*3600))}},
		{deadline, map[string]any{"c": make(chan int)}},
		{deadline, map[string]any{"nan": math.NaN()}},
	}
	for _, s := range odd {
		cases = append(cases, struct {
			deadline time.Time
			values   map[string]any
		}{deadline, map[string]any{
			KeyUser:   User{Username: s, Role: s, Gen: s},
			KeyOrigin: Origin{Process: s, Instance: s, At: now},
			s + "k":   s, KeyCounted: Counted{Process: s, Instance: s},
		}})
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) { sameEncodingAsMarshal(t, c.deadline, c.values) })
	}
}

func FuzzEncodeSameAsMarshal(f *testing.F) {
	f.Add("alice", "student", "4874ab3d7a607d6f", "6d5dcf", "vm:8080", "views", 3, int64(1796549741), int64(552e6), 0, true)
	f.Add("<", "\xff", "", "a\u2028", `"`, "__rememberMe", -1, int64(-62135596800), int64(0), -3600, false)
	f.Fuzz(func(t *testing.T, user, role, gen, process, instance, key string, views int, sec, nsec int64, offset int, flag bool) {
		at := time.Unix(sec, nsec).In(time.FixedZone("", offset))
		values := map[string]any{
			KeyUser:    User{Username: user, Role: role, Gen: gen},
			KeyOrigin:  Origin{Process: process, Instance: instance, At: at},
			KeyCounted: Counted{Process: instance, Instance: process},
			KeySeen:    at,
			KeyViews:   views,
			key:        flag,
		}
		sameEncodingAsMarshal(t, at, values)
	})
}

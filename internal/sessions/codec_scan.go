package sessions

import (
	"encoding/json"
	"time"
)

// decodePlain is Decode's one-pass fast path for the JSON Encode and cjson
// write (encoding/json scanned it twice); it declines anything else (ok
// false) and decodes the rest as the general path (FuzzDecodeSameAsReference).
func decodePlain(b []byte) (deadline time.Time, values map[string]any, ok bool) {
	// The values' strings are cut from one copy of the session: a string
	// each was an allocation each, eight with the lab's evidence. A value
	// kept past the request (the live stream's user) keeps the copy, a few
	// hundred bytes.
	s := scanner{b: b, src: string(b)}
	if !s.byte('{') {
		return time.Time{}, nil, false
	}
	var haveDeadline, haveValues bool
	for !s.byte('}') {
		if (haveDeadline || haveValues) && !s.byte(',') {
			return time.Time{}, nil, false
		}
		key, ok := s.key()
		if !ok {
			return time.Time{}, nil, false
		}
		switch {
		case key == "deadline" && !haveDeadline:
			haveDeadline = true
			raw, ok := s.value(0)
			if !ok || raw[0] != '"' || unmarshalTime(&deadline, raw) != nil {
				return time.Time{}, nil, false
			}
		case key == "values" && !haveValues:
			haveValues = true
			if values, ok = s.values(); !ok {
				return time.Time{}, nil, false
			}
		default:
			return time.Time{}, nil, false
		}
	}
	if s.i != len(b) || !haveDeadline || !haveValues || deadline.IsZero() {
		return time.Time{}, nil, false
	}
	if y := deadline.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, nil, false
	}
	return deadline, values, true
}

// values reads the session's values object: the user, the origin, the
// last counter and the lab's evidence by hand and in place, the rest (or
// any of those not as Encode and cjson write them) by decodeValue, as the
// general path does.
func (s *scanner) values() (map[string]any, bool) {
	if !s.byte('{') {
		return nil, false
	}
	values := make(map[string]any, 6)
	if s.byte('}') {
		return values, true
	}
	for {
		key, ok := s.valueKey()
		if !ok {
			return nil, false
		}
		if _, dup := values[key]; dup {
			return nil, false
		}
		start := s.i
		v, ok := s.appValue(key)
		if !ok {
			s.i = start
			raw, ok := s.value(0)
			if !ok {
				return nil, false
			}
			var err error
			if v, err = decodeValue(key, raw); err != nil {
				return nil, false
			}
		}
		values[key] = v
		if s.byte('}') {
			return values, true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// appValue reads the value of key in place, where it is one of the app's
// types that values reads by hand (read once, where checking it first with
// value was half of a decode); ok false for any other key, or a value not
// as Encode and cjson write it (null, escapes, other or repeated keys).
func (s *scanner) appValue(key string) (any, bool) {
	switch key {
	case KeyUser:
		var u User
		ok := s.user(&u)
		return u, ok
	case KeyOrigin:
		var o Origin
		ok := s.origin(&o)
		return o, ok
	case KeyCounted:
		var c Counted
		ok := s.counted(&c)
		return c, ok
	case KeyLab:
		var l Lab
		ok := s.lab(&l)
		return l, ok
	}
	return nil, false
}

func (s *scanner) user(u *User) bool {
	var seen memberSet
	return s.members(func(key string) bool {
		switch key {
		case "username":
			return seen.first(0) && s.str(&u.Username)
		case "role":
			return seen.first(1) && s.str(&u.Role)
		case "gen":
			return seen.first(2) && s.str(&u.Gen)
		}
		return false
	})
}

func (s *scanner) origin(o *Origin) bool {
	var seen memberSet
	return s.members(func(key string) bool {
		switch key {
		case "process":
			return seen.first(0) && s.str(&o.Process)
		case "instance":
			return seen.first(1) && s.str(&o.Instance)
		case "at":
			return seen.first(2) && s.time(&o.At)
		}
		return false
	})
}

// memberSet is the members of an object read so far.
type memberSet uint16

// first marks member i read; false if it was already (a repeated key,
// which encoding/json would read twice).
func (m *memberSet) first(i uint) bool {
	if *m&(1<<i) != 0 {
		return false
	}
	*m |= 1 << i
	return true
}

// members reads an object whose keys are plain strings, calling member for
// each with the key cut from src and s at its value, which member reads;
// false if member refuses one. A value member leaves unfinished (a
// fraction or exponent after an integer) is refused here.
func (s *scanner) members(member func(key string) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		start := s.i
		if !s.plainString() || !s.byte(':') || !member(s.src[start+1:s.i-2]) {
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// time reads a plain string as time.Time's UnmarshalJSON reads it.
func (s *scanner) time(t *time.Time) bool {
	start := s.i
	return s.plainString() && unmarshalTime(t, s.b[start:s.i]) == nil
}

// str reads a plain string into p, cut from src.
func (s *scanner) str(p *string) bool {
	start := s.i
	if !s.plainString() {
		return false
	}
	*p = s.src[start+1 : s.i-1]
	return true
}

func (s *scanner) int64(p *int64) bool {
	n, ok := s.integer()
	*p = n
	return ok
}

func (s *scanner) int(p *int) bool {
	n, ok := s.integer()
	*p = int(n)
	return ok
}

func (s *scanner) boolean(p *bool) bool {
	switch {
	case s.word("true"):
		*p = true
	case s.word("false"):
		*p = false
	default:
		return false
	}
	return true
}

// scanner reads a strict subset of JSON: no whitespace, and printable ASCII
// without escapes in the strings it reads itself.
type scanner struct {
	b   []byte
	i   int
	src string // b as a string, where the caller has one: values' strings are cut from it
}

func (s *scanner) peek(c byte) bool { return s.i < len(s.b) && s.b[s.i] == c }

func (s *scanner) byte(c byte) bool {
	if s.peek(c) {
		s.i++
		return true
	}
	return false
}

// plainString passes a string of printable ASCII without escapes.
func (s *scanner) plainString() bool {
	if !s.byte('"') {
		return false
	}
	// One look-up a byte where four comparisons were: every key and
	// string of a session and of the browsers list passes here.
	i := s.i
	for i < len(s.b) && plainByte[s.b[i]] {
		i++
	}
	if i == len(s.b) || s.b[i] != '"' {
		return false
	}
	s.i = i + 1
	return true
}

// plainByte is what a plain string holds: printable ASCII but '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// key reads a plain string and the colon after it.
func (s *scanner) key() (string, bool) {
	start := s.i
	if !s.plainString() || !s.byte(':') {
		return "", false
	}
	return string(s.b[start+1 : s.i-2]), true
}

// valueKey is key for the values' members: the app's own keys are their
// constants, not a string made per key and request.
func (s *scanner) valueKey() (string, bool) {
	start := s.i
	if !s.plainString() || !s.byte(':') {
		return "", false
	}
	k := s.b[start+1 : s.i-2]
	for _, known := range valueKeys {
		if string(k) == known {
			return known, true
		}
	}
	return string(k), true
}

var valueKeys = [...]string{KeyUser, KeyViews, KeySeen, KeyOrigin, KeyRememberMe, KeyLab, KeyCounted}

// maxDepth bounds how deep value goes into nested arrays and objects.
const maxDepth = 32

// value passes one JSON value and returns its bytes.
func (s *scanner) value(depth int) (json.RawMessage, bool) {
	if s.i >= len(s.b) || depth > maxDepth {
		return nil, false
	}
	start := s.i
	var ok bool
	switch c := s.b[s.i]; {
	case c == '"':
		ok = s.anyString()
	case c == '{':
		ok = s.container('}', depth, true)
	case c == '[':
		ok = s.container(']', depth, false)
	case c == '-' || c >= '0' && c <= '9':
		ok = s.number()
	default:
		ok = s.word("true") || s.word("false") || s.word("null")
	}
	return s.b[start:s.i], ok
}

// container passes an object (keyed) or an array.
func (s *scanner) container(end byte, depth int, keyed bool) bool {
	s.i++
	if s.byte(end) {
		return true
	}
	for {
		if keyed && (!s.anyString() || !s.byte(':')) {
			return false
		}
		if _, ok := s.value(depth + 1); !ok {
			return false
		}
		if s.byte(end) {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

// anyString passes any valid JSON string (escapes and UTF-8 included:
// decodeValue reads it again).
func (s *scanner) anyString() bool {
	if !s.byte('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		s.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if s.i >= len(s.b) {
				return false
			}
			e := s.b[s.i]
			s.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.i+4 > len(s.b) {
					return false
				}
				for _, h := range s.b[s.i : s.i+4] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				s.i += 4
			default:
				return false
			}
		}
	}
	return false
}

// number passes -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	s.byte('-')
	switch {
	case s.byte('0'):
	case s.digits() == 0:
		return false
	}
	if s.byte('.') && s.digits() == 0 {
		return false
	}
	if s.byte('e') || s.byte('E') {
		if !s.byte('+') {
			s.byte('-')
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

func (s *scanner) word(w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

// parsePlainBrowsers is ParseBrowsers's fast path (every count runs it) for
// the list as cjson writes it; it declines anything else (ok false) and reads
// the rest as encoding/json would (FuzzParseBrowsersSameAsJSON).
func parsePlainBrowsers(list string) ([]Browser, bool) {
	s := scanner{b: []byte(list)}
	s.src = list
	if !s.byte('[') {
		return nil, false
	}
	out := make([]Browser, 0, MaxBrowsers)
	if s.byte(']') {
		return out, s.i == len(s.b)
	}
	for {
		b, ok := s.browser()
		if !ok {
			return nil, false
		}
		out = append(out, b)
		if s.byte(']') {
			return out, s.i == len(s.b)
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

// browser reads one plain Browser object.
func (s *scanner) browser() (b Browser, ok bool) {
	b, _, ok = s.browserSeen()
	return b, ok
}

// browserSeen is browser, and which of its members the object had (id,
// device, logged_in, views, at, open).
func (s *scanner) browserSeen() (b Browser, seen [6]bool, ok bool) {
	if !s.byte('{') {
		return b, seen, false
	}
	if s.byte('}') {
		return b, seen, true
	}
	for {
		key, ok := s.browserKey()
		if !ok {
			return b, seen, false
		}
		f := -1
		switch key {
		case "id", "device":
			start := s.i
			if !s.plainString() {
				return b, seen, false
			}
			// Cut from src: a string per value was two allocations a row.
			v := s.src[start+1 : s.i-1]
			if key == "id" {
				f, b.ID = 0, v
			} else {
				f, b.Device = 1, v
			}
		case "logged_in", "open":
			var v bool
			switch {
			case s.word("true"):
				v = true
			case s.word("false"):
			default:
				return b, seen, false
			}
			if key == "open" {
				f, b.Open = 5, v
			} else {
				f, b.LoggedIn = 2, v
			}
		case "views", "at":
			n, ok := s.integer()
			if !ok {
				return b, seen, false
			}
			if key == "views" {
				f, b.Views = 3, int(n)
			} else {
				f, b.At = 4, n
			}
		default:
			return b, seen, false
		}
		if seen[f] {
			return b, seen, false
		}
		seen[f] = true
		if s.byte('}') {
			return b, seen, true
		}
		if !s.byte(',') {
			return b, seen, false
		}
	}
}

// browserKey passes one of Browser's JSON keys and its colon, compared
// whole (no string made, no byte looked at twice); ok false for any other.
func (s *scanner) browserKey() (string, bool) {
	if len(s.b)-s.i < 2 || s.b[s.i] != '"' {
		return "", false
	}
	var member string
	switch s.b[s.i+1] {
	case 'i':
		member = `"id":`
	case 'd':
		member = `"device":`
	case 'l':
		member = `"logged_in":`
	case 'o':
		member = `"open":`
	case 'v':
		member = `"views":`
	case 'a':
		member = `"at":`
	default:
		return "", false
	}
	if len(s.b)-s.i < len(member) || string(s.b[s.i:s.i+len(member)]) != member {
		return "", false
	}
	s.i += len(member)
	return member[1 : len(member)-2], true
}

// integer reads -?(0|[1-9][0-9]*) of at most 18 digits (a fraction or
// exponent after it is left to the caller to refuse).
func (s *scanner) integer() (int64, bool) {
	neg := s.byte('-')
	var n int64
	if !s.byte('0') {
		digits := s.i
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			n = n*10 + int64(s.b[s.i]-'0')
			s.i++
		}
		if s.i == digits || s.i-digits > 18 {
			return 0, false
		}
	}
	if neg {
		n = -n
	}
	return n, true
}

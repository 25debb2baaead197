package sessions

// The lab's evidence on decodePlain's fast path: every request of a student
// past the restart or servers step decodes a Lab and a Counted, and
// encoding/json's reflection made them four times the rest of the session.

// plainCounted reads a Counted as plainUser reads a User.
func plainCounted(raw []byte) (c Counted, ok bool) {
	var seen [2]bool
	ok = fields(raw, func(k string, v []byte) bool {
		if v[0] != '"' {
			return false
		}
		switch {
		case k == "process" && !seen[0]:
			seen[0], c.Process = true, string(v[1:len(v)-1])
		case k == "instance" && !seen[1]:
			seen[1], c.Instance = true, string(v[1:len(v)-1])
		default:
			return false
		}
		return true
	})
	return c, ok
}

// plainLab reads a Lab as Encode (json.Marshal) and the scripts (cjson,
// members in any order) write it; ok false for anything else: null,
// escapes, other or repeated keys, a number that is not a plain integer.
func plainLab(raw []byte) (l Lab, ok bool) {
	// The Lab's strings are cut from one copy of raw: a string each was
	// six allocations for the two moves alone.
	s := scanner{b: raw, src: string(raw)}
	var seen memberSet
	ok = s.members(func(key string) bool {
		switch key {
		case "browsers":
			l.Browsers = new(LabBrowsers)
			return seen.first(0) && s.labBrowsers(l.Browsers)
		case "restart":
			l.Restart = new(LabMove)
			return seen.first(1) && s.labMove(l.Restart)
		case "servers":
			l.Servers = new(LabMove)
			return seen.first(2) && s.labMove(l.Servers)
		case "httponly":
			l.HTTPOnly = new(LabOutcomes)
			return seen.first(3) && s.labOutcomes(l.HTTPOnly)
		case "fixation":
			l.Fixation = new(LabOutcomes)
			return seen.first(4) && s.labOutcomes(l.Fixation)
		case "login":
			l.Login = new(LabLogin)
			return seen.first(5) && s.labLogin(l.Login)
		case "seen":
			return seen.first(6) && s.labSeen(&l.Seen)
		case "no_httponly":
			return seen.first(7) && s.boolean(&l.NoHTTPOnly)
		case "no_renewal":
			return seen.first(8) && s.boolean(&l.NoRenewal)
		}
		return false
	})
	return l, ok && s.i == len(raw)
}

func (s *scanner) labMove(m *LabMove) bool {
	var seen memberSet
	return s.members(func(key string) bool {
		switch key {
		case "from":
			return seen.first(0) && s.str(&m.From)
		case "process":
			return seen.first(1) && s.str(&m.Process)
		case "instance":
			return seen.first(2) && s.str(&m.Instance)
		case "views":
			return seen.first(3) && s.int(&m.Views)
		case "at":
			return seen.first(4) && s.int64(&m.At)
		}
		return false
	})
}

func (s *scanner) labBrowsers(b *LabBrowsers) bool {
	var seen memberSet
	return s.members(func(key string) bool {
		switch key {
		case "at":
			return seen.first(0) && s.int64(&b.At)
		case "this":
			return seen.first(1) && s.str(&b.This)
		case "other":
			return seen.first(2) && s.str(&b.Other)
		}
		return false
	})
}

func (s *scanner) labOutcomes(o *LabOutcomes) bool {
	var seen memberSet
	return s.members(func(key string) bool {
		switch key {
		case "hidden":
			return seen.first(0) && s.int64(&o.Hidden)
		case "exposed":
			return seen.first(1) && s.int64(&o.Exposed)
		}
		return false
	})
}

func (s *scanner) labLogin(l *LabLogin) bool {
	var seen memberSet
	return s.members(func(key string) bool {
		switch key {
		case "at":
			return seen.first(0) && s.int64(&l.At)
		case "browser":
			return seen.first(1) && s.str(&l.Browser)
		case "renewed":
			return seen.first(2) && s.boolean(&l.Renewed)
		case "from":
			return seen.first(3) && s.str(&l.From)
		case "shared":
			return seen.first(4) && s.boolean(&l.Shared)
		}
		return false
	})
}

// labSeen reads Lab.Seen; encoding/json makes the map for {} too.
func (s *scanner) labSeen(seen *map[string]int64) bool {
	m := map[string]int64{}
	*seen = m
	return s.members(func(id string) bool {
		if _, dup := m[id]; dup {
			return false
		}
		var at int64
		if !s.int64(&at) {
			return false
		}
		m[id] = at
		return true
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

package sessions

// The lab's evidence on decodePlain's fast path: every request of a student
// past the restart or servers step decodes a Lab and a Counted, and
// encoding/json's reflection made them four times the rest of the session.

func (s *scanner) counted(c *Counted) bool {
	var seen memberSet
	return s.members(func(key string) bool {
		switch key {
		case "process":
			return seen.first(0) && s.str(&c.Process)
		case "instance":
			return seen.first(1) && s.str(&c.Instance)
		}
		return false
	})
}

// lab reads a Lab as Encode (json.Marshal) and the scripts (cjson, members
// in any order) write it; false for anything else: null, escapes, other or
// repeated keys, a number that is not a plain integer.
func (s *scanner) lab(l *Lab) bool {
	var seen memberSet
	return s.members(func(key string) bool {
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

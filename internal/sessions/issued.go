package sessions

import (
	"sync"
	"time"
)

// Issued remembers the sessions this process has stored, for -store memory:
// there, a well-formed cookie naming a session the process never stored was
// lost with an earlier process (or lives on another instance), and the page
// can say so instead of silently starting over. Entries are kept by ID (a
// hash, never the token) until the session's expiry.
type Issued struct {
	mu    sync.Mutex
	until map[string]time.Time
	adds  int
}

// sweepEvery is how many Adds pass between sweeps of expired entries, so
// the set stays as large as the live sessions, not as all sessions ever.
const sweepEvery = 1024

// Add records that token's session is stored here until expiry.
func (s *Issued) Add(token string, expiry time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.until == nil {
		s.until = map[string]time.Time{}
	}
	s.adds++
	if s.adds%sweepEvery == 0 {
		now := time.Now()
		for id, t := range s.until {
			if now.After(t) {
				delete(s.until, id)
			}
		}
	}
	s.until[ID(token)] = expiry
}

// Has reports whether this process stored token's session. One that has
// expired since still counts until a sweep: it was known, it ended.
func (s *Issued) Has(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.until[ID(token)]
	return ok
}

package sessions

import (
	"sync"
	"time"
)

// Issued remembers by ID the sessions this process stored, for -store memory,
// so a page can say a session was lost with an earlier process (or lives on
// another instance) instead of silently starting over.
type Issued struct {
	mu    sync.Mutex
	until map[string]time.Time
	adds  int
}

// sweepEvery is how many Adds pass between sweeps of expired entries.
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

// Lost reports whether token's session was never stored by this process:
// it was lost with an earlier process, or lives on another instance.
func (s *Issued) Lost(token string) bool { return !s.Has(token) }

// NeverLost is Issued's counterpart for sessions in Redis: every instance
// reads every session, and a restart loses none, so nothing is recorded.
type NeverLost struct{}

// Add implements the same method of Issued; there is nothing to record.
func (NeverLost) Add(string, time.Time) {}

// Lost is always false: a session in Redis outlives any process.
func (NeverLost) Lost(string) bool { return false }

// Has reports whether this process stored token's session. One that has
// expired since still counts until a sweep: it was known, it ended.
func (s *Issued) Has(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.until[ID(token)]
	return ok
}

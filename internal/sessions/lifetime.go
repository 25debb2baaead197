package sessions

import (
	"fmt"
	"time"
)

// EndsAt is the one rule for when a session ends: idle after its last
// activity, never after its deadline (idle <= 0: no idle timeout; a zero seen
// has ended). Server checks, key expiries and pages all use it.
func EndsAt(seen, deadline time.Time, idle time.Duration) time.Time {
	if idle > 0 && seen.Add(idle).Before(deadline) {
		return seen.Add(idle)
	}
	return deadline
}

// FreshFor is how long a new anonymous session's key lives if never used
// again: how long a flood of new sessions lasts once it stops.
const FreshFor = 10 * time.Minute

// WarnBefore is how long before a session's end its pages are warned.
const WarnBefore = 2 * time.Minute

// TouchEvery is how stale "last seen" may get before a read-only request
// refreshes it: a session never ends more than a tenth of its idle time early.
func TouchEvery(idle time.Duration) time.Duration {
	if idle <= 0 {
		return 5 * time.Minute
	}
	return min(idle/10, 5*time.Minute)
}

// Times are a stored session's two clocks, and its view count for a page
// that catches up with it.
type Times struct {
	Deadline time.Time // absolute deadline
	Seen     time.Time // last recorded activity
	Views    int
}

// End is when the session ends if nothing touches it again (see EndsAt).
func (t Times) End(idle time.Duration) time.Time { return EndsAt(t.Seen, t.Deadline, idle) }

// timesOfStored reads the clocks of a stored session; a value scs could
// not load is no session.
func timesOfStored(b []byte) (Times, error) {
	deadline, values, err := Codec{}.Decode(b)
	if err != nil {
		return Times{}, fmt.Errorf("%w: %w", ErrNoSession, err)
	}
	return timesOf(deadline, values), nil
}

// timesOf reads a session's clocks from what the codec decoded.
func timesOf(deadline time.Time, values map[string]any) Times {
	seen, _ := values[KeySeen].(time.Time)
	views, _ := values[KeyViews].(int)
	return Times{Deadline: deadline, Seen: seen, Views: views}
}

// Taken is a stored session as a renewal took it from its old key (Take),
// with every change made up to that moment: the new token carries all of
// it, so nothing another request stored since this one loaded the session
// (a count, a lab outcome, a login that kept the token) is written over.
type Taken struct {
	Views    int            // the view count (0 when none or unreadable)
	Deadline time.Time      // zero when unreadable
	Values   map[string]any // nil when unreadable
}

func taken(b []byte) Taken {
	deadline, values, err := Codec{}.Decode(b)
	if err != nil {
		return Taken{}
	}
	views, _ := values[KeyViews].(int)
	return Taken{Views: views, Deadline: deadline, Values: values}
}

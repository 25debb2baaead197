package handlers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/sessionlab/sessionlab/internal/requestlog"
)

// A kind of event that many requests can cause (a refusal, a request an
// outage failed, what a client did to its own request) is logged a line per
// period (perMinuteEvery): the first event at once, then, at the end of the
// period that line began, one line for every event since, whether or not
// another comes, so the end of a burst reaches the log. One timer serves
// every kind; at shutdown the lines pending are written at once.

// tallyEvent is one event of a kind logged a line a period.
type tallyEvent struct {
	kind  string // one line per kind and period; several kinds may share a msg
	msg   string
	level slog.Level
	names tallyNames // what the line calls the count, and who
	key   string     // who the event is counted to: a client, an origin, a route
	// by is counted apart too, as <names.count>_<by> (the bound a live
	// stream passed); each of byAll is named, zeros too.
	by    string
	byAll []string
	head  []any // the latest event's attributes before the counts
	last  []any // the latest event's attributes after them (last_method=…)
}

// tallyLog writes each kind's lines; its zero value is ready to use.
type tallyLog struct {
	every time.Duration // the period; zero: perMinuteEvery (tests shorten it)

	mu      sync.Mutex
	kinds   map[string]*tallyKind // a fixed set of kinds, named in code
	timer   *time.Timer           // made at the first event that waits
	at      time.Time             // when timer fires; zero: not armed
	stopped bool                  // flushed for good: every event is written at once
}

type tallyKind struct {
	logged    time.Time // the last line; zero: none yet
	tally     refusalTally
	by        map[string]int
	latest    tallyEvent
	requestID string // the latest's, if a request's
	log       *slog.Logger
}

// tallyLine is a line ready to write, once the lock is let go.
type tallyLine struct {
	log   *slog.Logger
	level slog.Level
	msg   string
	args  []any
}

func (l tallyLine) write() { l.log.Log(context.Background(), l.level, l.msg, l.args...) }

// tally counts e, and logs its kind's line if one is due.
func (a *App) tally(ctx context.Context, e tallyEvent) { a.tallies.note(ctx, a.Log, e) }

// note counts e (from the request of ctx, if any) and writes its kind's line
// if none was written this period; else the line waits for the period's end.
func (l *tallyLog) note(ctx context.Context, log *slog.Logger, e tallyEvent) {
	l.mu.Lock()
	if l.kinds == nil {
		l.kinds = map[string]*tallyKind{}
	}
	k := l.kinds[e.kind]
	if k == nil {
		k = &tallyKind{by: map[string]int{}}
		l.kinds[e.kind] = k
	}
	k.tally.add(e.key)
	if e.by != "" {
		k.by[e.by]++
	}
	k.latest, k.log, k.requestID = e, log, ""
	if info := requestlog.From(ctx); info != nil {
		k.requestID = info.ID
	}
	now := time.Now()
	var line tallyLine
	due := k.logged.IsZero() || now.Sub(k.logged) >= l.period() || l.stopped
	if due {
		line = k.take(now)
	} else {
		l.arm(k.logged.Add(l.period()), now)
	}
	l.mu.Unlock()
	if due {
		line.write()
	}
}

func (l *tallyLog) period() time.Duration {
	if l.every > 0 {
		return l.every
	}
	return perMinuteEvery
}

// arm has the timer fire at t, unless it fires sooner.
func (l *tallyLog) arm(t, now time.Time) {
	if !l.at.IsZero() && !t.Before(l.at) {
		return
	}
	l.at = t
	if l.timer == nil {
		l.timer = time.AfterFunc(t.Sub(now), l.fire)
		return
	}
	l.timer.Reset(t.Sub(now))
}

// fire writes the lines whose period has ended, and arms the timer for the
// next one pending.
func (l *tallyLog) fire() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	now := time.Now()
	l.at = time.Time{}
	var lines []tallyLine
	for _, k := range l.kinds {
		if k.tally.refused == 0 {
			continue
		}
		if end := k.logged.Add(l.period()); now.Before(end) {
			l.arm(end, now)
			continue
		}
		lines = append(lines, k.take(now))
	}
	l.mu.Unlock()
	for _, line := range lines {
		line.write()
	}
}

// flush writes every line pending now and, from then on, each event at
// once: nothing is left to write them later.
func (l *tallyLog) flush() {
	l.mu.Lock()
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
	}
	now := time.Now()
	var lines []tallyLine
	for _, k := range l.kinds {
		if k.tally.refused > 0 {
			lines = append(lines, k.take(now))
		}
	}
	l.mu.Unlock()
	for _, line := range lines {
		line.write()
	}
}

// take is the line of the events counted, which starts a new period.
func (k *tallyKind) take(now time.Time) tallyLine {
	e := k.latest
	args := append(append([]any{}, e.head...), k.tally.summary().argsAs(e.names)...)
	for _, b := range e.byAll {
		args = append(args, e.names.count+"_"+b, k.by[b])
	}
	args = append(args, e.last...)
	if k.requestID != "" {
		// A line counts many requests: the latest's id finds it in a
		// proxy's log, as last_route names its route.
		args = append(args, "last_request_id", k.requestID)
	}
	k.logged, k.tally, k.by = now, refusalTally{}, map[string]int{}
	return tallyLine{log: k.log, level: e.level, msg: e.msg, args: args}
}

// FlushTallies writes the tally lines still pending; main calls it once the
// server has shut down, so the last minute before the exit is not lost.
// Later events are written at once.
func (a *App) FlushTallies() { a.tallies.flush() }

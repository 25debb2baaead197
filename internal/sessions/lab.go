package sessions

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// The lab's evidence lives in the session (KeyLab), so progress follows it
// through a token renewal; the count script writes most of it, LabNote the
// rest. No field is a JSON array: cjson writes an empty table as {}.

// Lab is the lab's evidence and switches in one session. Times are unix ms.
type Lab struct {
	Browsers *LabBrowsers `json:"browsers,omitempty"`
	Restart  *LabMove     `json:"restart,omitempty"`
	Servers  *LabMove     `json:"servers,omitempty"`
	HTTPOnly *LabOutcomes `json:"httponly,omitempty"`
	Fixation *LabOutcomes `json:"fixation,omitempty"`
	// Login is the last login of this session, for the fixation step.
	Login *LabLogin `json:"login,omitempty"`
	// Seen are the lab browser ids (a lab-only cookie) that opened /lab with
	// this session: more than one means the ID was carried to another browser.
	Seen map[string]int64 `json:"seen,omitempty"`

	// The switches (-lab only), for this session alone.
	NoHTTPOnly bool `json:"no_httponly,omitempty"` // the cookie is issued without HttpOnly
	NoRenewal  bool `json:"no_renewal,omitempty"`  // a login keeps the token
}

// Weakened reports whether a switch weakens the session.
func (l Lab) Weakened() bool { return l.NoHTTPOnly || l.NoRenewal }

// LabBrowsers is the browsers step's evidence: two browsers of one
// address counted, each with its own session.
type LabBrowsers struct {
	At    int64  `json:"at"`
	This  string `json:"this"`  // "Chrome on Linux: 3 views"
	Other string `json:"other"` // the other browser, the same way
}

// LabMove is the restart or servers step's evidence: a count landed on another
// process or instance, and went on from where it was.
type LabMove struct {
	From     string `json:"from"` // the previous process (restart) or instance (servers)
	Process  string `json:"process"`
	Instance string `json:"instance"`
	Views    int    `json:"views"`
	At       int64  `json:"at"`
}

// LabOutcomes are the two outcomes an experiment must show (unix ms, 0: not
// yet): whether a script (httponly) or a second browser (fixation) got the ID.
type LabOutcomes struct {
	Hidden  int64 `json:"hidden,omitempty"`
	Exposed int64 `json:"exposed,omitempty"`
}

// Both reports whether both outcomes were seen.
func (o *LabOutcomes) Both() bool { return o != nil && o.Hidden > 0 && o.Exposed > 0 }

// LabLogin is a login as the fixation step sees it.
type LabLogin struct {
	At      int64  `json:"at"`
	Browser string `json:"browser"`          // the lab browser id that logged in
	Renewed bool   `json:"renewed"`          // the token was renewed
	From    string `json:"from,omitempty"`   // ID of the token before the login
	Shared  bool   `json:"shared,omitempty"` // another browser held that token
}

// Counted is the process that counted a session last (the count script
// keeps it): the next count on another process is the restart evidence.
type Counted struct {
	Process  string `json:"process"`
	Instance string `json:"instance"`
}

// LabTime is a lab timestamp as a time.
func LabTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// noteMove is the count script's Lua that records the first restart and
// servers evidence, then this process as the last counter; the fields are
// Counted's, Origin's and Lab's JSON names. It returns the Lab field it
// recorded (nil for none), for the count's page to show the tick.
const noteMove = `
local function note_move(values, v, process, instance, now, korigin, kcounted, klab)
  local noted
  local prev = values[kcounted] or values[korigin]
  if type(prev) == 'table' and v > 1 and prev.process ~= process then
    local lab = values[klab]
    if type(lab) ~= 'table' then lab = nil end
    local kind = 'servers'
    local from = prev.instance
    if prev.instance == instance then kind = 'restart'; from = prev.process end
    if not (lab and lab[kind]) then
      lab = lab or {}
      lab[kind] = {from = from, process = process, instance = instance, views = v, at = now}
      values[klab] = lab
      noted = kind
    end
  end
  -- Kept only once a count lands away from the creating process: until
  -- then the origin says the same, and the session is no bigger.
  local o = values[korigin]
  if values[kcounted] or type(o) ~= 'table' or o.process ~= process or o.instance ~= instance then
    values[kcounted] = {process = process, instance = instance}
  end
  return noted
end
`

// labNote changes one Lab field in place (KEEPTTL), never writing back what
// another request may be changing. KEYS[1] the session; ARGV: the field, its
// JSON, "1" to replace a field already set, KeyLab, KeyViews.
var labNote = redistrace.NewScript("lab note", encodeSession+`
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local s = cjson.decode(raw)
local lab = s.values[ARGV[4]]
if type(lab) ~= 'table' then lab = {} end
if lab[ARGV[1]] ~= nil and ARGV[3] ~= '1' then return 1 end
lab[ARGV[1]] = cjson.decode(ARGV[2])
s.values[ARGV[4]] = lab
redis.call('SET', KEYS[1], encode_session(s, ARGV[5]), 'KEEPTTL')
return 1`)

// LabNote sets one field of a stored session's Lab (by its JSON name) to
// value, unless it is set already and replace is false.
func (o *Ops) LabNote(ctx context.Context, token, field string, value any, replace bool) error {
	b, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("sessions: lab note: %w", err)
	}
	flag := "0"
	if replace {
		flag = "1"
	}
	n, err := labNote.Exec(ctx, o.rdb, []string{Key(token)}, []string{field, string(b), flag, KeyLab, KeyViews}).AsInt64()
	if err != nil {
		return fmt.Errorf("sessions: lab note: %w", err)
	}
	if n == 0 {
		return ErrNoSession
	}
	return nil
}

// LabNote is Ops.LabNote for this process's memory.
func (m *MemoryOps) LabNote(ctx context.Context, token, field string, value any, replace bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	deadline, values, err := m.find(token)
	if err != nil {
		return err
	}
	lab, _ := values[KeyLab].(Lab)
	b, err := json.Marshal(lab)
	if err != nil {
		return fmt.Errorf("sessions: lab note: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return fmt.Errorf("sessions: lab note: %w", err)
	}
	if _, set := fields[field]; set && !replace {
		return nil
	}
	if fields[field], err = json.Marshal(value); err != nil {
		return fmt.Errorf("sessions: lab note: %w", err)
	}
	b, _ = json.Marshal(fields)
	lab = Lab{}
	if err := json.Unmarshal(b, &lab); err != nil {
		return fmt.Errorf("sessions: lab note: %w", err)
	}
	values[KeyLab] = lab
	return m.save(token, deadline, values, timesOf(deadline, values).End(m.Idle))
}

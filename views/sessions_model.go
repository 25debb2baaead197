package views

import (
	"strconv"
	"time"
)

// Sessions is the active-sessions page.
type Sessions struct {
	Rows        []SessionRow
	Now         time.Time
	Notice      string
	Refused     string // why "log out everywhere else" was refused (a limit)
	Password    PasswordForm
	Unavailable bool // memory store mode: no shared index of sessions
}

// SessionRow is one live session of the user. ID is a hash of the token,
// never the token.
type SessionRow struct {
	ID, Device, IP, Instance string
	Views                    int  // the session's count, as Redis has it
	Unreadable               bool // its key holds no session (edited by hand): Views says nothing
	Created, LastSeen        time.Time
	Current                  bool // the session of the browser looking at the page
	// Holders: the lab saw this session's ID in these browsers (a pasted
	// or planted ID); nil unless two or more.
	Holders []Holder
}

// Holder is one browser holding a session's ID, as the lab saw it.
type Holder struct {
	This  bool      // the browser looking at the page
	Since time.Time // when the lab first saw it with the ID
}

// PasswordForm is the change-password form on the sessions page.
type PasswordForm struct {
	Username     string // whose password: a hidden field tells password managers
	Current, New Field
	Error        string
}

// StaySignedIn is the profile's "stay signed in" control.
type StaySignedIn struct {
	IdleDeadline time.Time
	Now          time.Time
	WarnBefore   time.Duration // how long before the deadline to warn
	Touched      bool          // the session was just touched
	Pushed       bool          // sent over the event stream (not with the page)
}

// Warn reports whether to warn: the session ends within WarnBefore and
// the user has not just asked to stay.
func (s StaySignedIn) Warn() bool { return !s.Touched && s.IdleDeadline.Sub(s.Now) <= s.WarnBefore }

func ago(t, now time.Time) string {
	d := now.Sub(t).Round(time.Second)
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min ago"
	default:
		return strconv.Itoa(int(d.Hours())) + " h " + strconv.Itoa(int(d.Minutes())%60) + " min ago"
	}
}

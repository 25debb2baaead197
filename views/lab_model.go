package views

import (
	"strconv"
	"unicode/utf8"

	"github.com/a-h/templ"
)

// Lab step names: data-step on /lab, in the tutorial's order.
const (
	StepStore    = "store"
	StepCount    = "count"
	StepBrowsers = "browsers"
	StepRestart  = "restart"
	StepServers  = "servers"
	StepHTTPOnly = "httponly"
	StepFixation = "fixation"
)

// LabSteps is how many steps the lab has.
const LabSteps = 7

// LabProgress is the header's compact "3 of 7 done".
type LabProgress struct {
	Done int
}

func (p LabProgress) String() string {
	return strconv.Itoa(p.Done) + " of " + strconv.Itoa(LabSteps) + " done"
}

// LabStep is one step of /lab: what to do, and either the evidence it is
// done or why it cannot be done here and what to run instead.
type LabStep struct {
	Name     string // one of the Step constants
	Title    string
	Do       string   // one line: what to do
	Done     bool     // ticked from recorded evidence
	Evidence []string // what the tick rests on, read from Redis (or this process in memory mode)
	Blocked  string   // not possible in this setup: what to run instead
	Lost     string   // memory mode's restart: what was lost
}

// Lab is the /lab page.
type Lab struct {
	// News is what the page shows of the address's browsers, as the stream
	// sends it (SSELab): the page reads its steps again when it differs.
	News     string
	Steps    []LabStep
	Progress LabProgress
	Path     LabPath
	// Switches: the app runs with -lab; the experiments' controls show.
	Switches   bool
	NoHTTPOnly bool // this session's cookie is issued without HttpOnly
	NoRenewal  bool // a login keeps this session's token
	HasSession bool
	LoggedIn   bool
	CookieName string
	SetCookie  string // this app's Set-Cookie line for this session, token cut short
	Secure     bool   // the cookie is Secure
	Localhost  bool   // the page was asked for at localhost (a secure context over HTTP)
	Host       string
	Holders    []Holder // the browsers holding this session's ID, when more than one
}

// LabPath is the SVG of this request's path: browser, cookie, instance and
// process, the session key in Redis, and the rest of this computer.
type LabPath struct {
	Browser        string // "Chrome on Linux"
	Cookie         string // "session=abc123…"
	CookieAttrs    string // "HttpOnly; SameSite=Lax; Path=/"
	Instance       string
	Process        string
	Key            string   // "sess:abc123…", "" without a session
	TTL            string   // "29m 58s", "" without a session
	Ended          string   // without a session: what became of the one whose cookie the browser sent ("" if none)
	InProcess      bool     // memory mode: the key is in this process, not Redis
	Others         []string // the other browsers of this computer, with their counts
	OtherInstances []string // the other instances on this Redis now, with their processes
}

// Height is the picture's height: it ends under its last line (the
// instances' rows start at y=404, 18 apart).
func (p LabPath) Height() int { return 404 + 18*max(len(p.OtherInstances)-1, 0) + 16 }

// fit squeezes a line that would run past the picture's 340-unit box, so a
// long name stays whole at any width (glyphs average about 0.55 em).
func fit(s string, fontSize int) templ.Attributes {
	const room = 320
	if float64(utf8.RuneCountInString(s))*0.55*float64(fontSize) <= room {
		return nil
	}
	return templ.Attributes{"textLength": strconv.Itoa(room), "lengthAdjust": "spacingAndGlyphs"}
}

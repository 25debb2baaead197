// Package views renders every page and fragment with templ. It knows only
// the plain view-model structs below; handlers fill them.
package views

import (
	"strconv"
	"strings"
	"time"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

// Page is what the layout needs on every page.
type Page struct {
	Title     string
	Instance  string  // which server instance rendered this response
	Process   Process // which process of it
	User      string  // logged-in username, "" when anonymous
	HidePanel bool    // the Redis page is itself the panel
	Banner    string  // shown on every page, e.g. when sessions live in memory
	// LostSession: with -store memory, the browser sent a well-formed
	// session cookie this process never stored.
	LostSession bool
	// EndedSession: the browser sent a well-formed session cookie that
	// the store (named here: EndedInRedis, or this server's memory) no
	// longer holds; "" otherwise.
	EndedSession string
	// UnreadableSession: the browser's session cookie names a value in
	// Redis that is not a session; the request started a new one.
	UnreadableSession bool
	// UnreadableAccount: the key of the account whose stored value is not
	// an account, which logged out the browser's session; "" otherwise.
	UnreadableAccount string
	DemoControls      bool // show "Restart this server"
	// Lab is the header's "N of 7 done" (see /lab).
	Lab LabProgress
	// LabWeakened: a lab switch (-lab) weakened this session on purpose.
	LabWeakened bool
}

// EndedInRedis is Page.EndedSession for a session store in Redis.
const EndedInRedis = "Redis"

// Process is the server process that answered: its short id is random and
// new on every start (a PID may be reused, a restart keeps it on re-exec).
type Process struct {
	ID       string
	Instance string
	Started  time.Time
	Now      time.Time // when the page was rendered, for "how long ago"
}

// Origin is which process created the session shown, and when, next to the
// process that served the page (Here).
type Origin struct {
	Process, Instance string
	Created           time.Time
	Here              Process
}

// Survived: the session is older than the process serving it.
func (o Origin) Survived() bool {
	return o.Process != "" && o.Process != o.Here.ID && o.Created.Before(o.Here.Started)
}

// OtherInstance: another instance created the session.
func (o Origin) OtherInstance() bool {
	return o.Instance != "" && o.Instance != o.Here.Instance
}

// Field is one form field's value and its error, shown next to it.
type Field struct {
	Value, Error string
}

// AuthForm is the login or register form.
type AuthForm struct {
	Username Field
	Password Field
	Remember bool
	Error    string // one message for the whole form (e.g. failed login)
	Notice   string // e.g. "You are logged out."
}

// Profile is the protected page.
type Profile struct {
	Username, Role string
	Views          int
	Origin         Origin
	Remember       bool
	IdleDeadline   time.Time
	WarnBefore     time.Duration // see StaySignedIn
	AbsDeadline    time.Time
	Lifetime       time.Duration // the absolute lifetime, which a login starts again
	Now            time.Time
}

// Hello is what an event stream says first: the process that answered and
// whether the page's session is alive there.
type Hello struct {
	Process  Process
	Previous string // the process the page knew; "" when it did not say
	Session  bool   // the request's session exists
	Memory   bool   // -store memory
	Views    int
}

// NewProcess: a different process answered than the one the page knew.
func (h Hello) NewProcess() bool { return h.Previous != "" && h.Previous != h.Process.ID }

// Count is the view counter page.
type Count struct {
	Views    int
	User     string // "" when anonymous
	Origin   Origin
	Browsers Browsers // the browsers on this computer
	Memory   bool     // -store memory: the session is in this process, not in Redis
	// CookieDropped: -cookie-secure, plain HTTP at an address that is not
	// localhost, and no cookie came: the browser drops the Secure cookie.
	CookieDropped bool
}

// RedisView is the "What's in Redis" panel.
type RedisView struct {
	Entries []RedisEntry
	Memory  bool        // -store memory: sessions are not in Redis at all
	Server  RedisServer // the Redis the app uses, for redis-cli
	At      time.Time   // when the keys were read
}

// RedisEntry is one key as redis-cli would show it; the session token in
// Key is cut short so the page never shows a usable token.
type RedisEntry struct {
	Key    string
	Note   string
	TTL    time.Duration // < 0: no expiry
	Memory int64
	Value  string
	Times  []string // epoch milliseconds in Value, written out readably
}

// Problem is an error page.
type Problem struct {
	Status  int
	Title   string
	Message string
	// Back, when set, links to the page the request came from (the lab's
	// refusals link to the lab), before Home.
	Back, BackText string
}

// htmxConfig keeps htmx inside a CSP without 'unsafe-inline' or 'unsafe-eval'
// and lets it swap 4xx fragments; its history cache is off, so back and
// forward never show a copy from before a login or logout.
const htmxConfig = `{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,` +
	`"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},` +
	`{"code":"40[19]|42[29]","swap":true},` +
	`{"code":"4..","swap":true,"error":true},{"code":"5..","swap":true,"error":true}]}`

// headFixed is headAssets rendered once, when the process starts.
var headFixed = renderedOnce(headAssets())

func ttlText(d time.Duration) string {
	if d < 0 {
		return "no expiry"
	}
	return d.Truncate(time.Second).String()
}

// clockLayout is how pages show a moment; datetimeLayout is the moment in
// a <time>'s datetime attribute.
const (
	clockLayout    = "2006-01-02 15:04:05 UTC"
	datetimeLayout = "2006-01-02T15:04:05Z"
)

// clock is t as clockLayout shows it, written digit by digit (stamp).
func clock(t time.Time) string { return stamp(t, "0000-00-00 00:00:00 UTC", clockLayout) }

// datetime is t as datetimeLayout shows it, written digit by digit (stamp).
func datetime(t time.Time) string { return stamp(t, "0000-00-00T00:00:00Z", datetimeLayout) }

// timeOfDay is t's UTC time as "15:04:05" shows it.
func timeOfDay(t time.Time) string {
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return t.UTC().Format(time.TimeOnly)
	}
	return clock(t)[11:19]
}

// stamp writes t's UTC date and time into the digits of pattern, which is
// layout with every field zero: time.Format parses its layout every call
// (a third of a page's time formatting).
func stamp(t time.Time, pattern, layout string) string {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < 0 || y > 9999 {
		return t.Format(layout)
	}
	b := []byte(pattern)
	put := func(i, v, n int) {
		for ; n > 0; n-- {
			b[i+n-1] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	put(5, int(mo), 2)
	put(8, d, 2)
	put(11, h, 2)
	put(14, mi, 2)
	put(17, s, 2)
	return string(b)
}

func until(t, now time.Time) string {
	d := t.Sub(now).Round(time.Minute)
	if d < time.Minute {
		return "in less than a minute"
	}
	h, m := int(d.Hours()), int(d.Minutes())%60
	if h == 0 {
		return "in " + strconv.Itoa(m) + " min"
	}
	return "in " + strconv.Itoa(h) + " h " + strconv.Itoa(m) + " min"
}

// describedBy lists the ids of what describes a field: its error, when one
// is shown, and its hint, when it has one ("" for neither).
func describedBy(field string, f Field, help string) string {
	var ids []string
	if f.Error != "" {
		ids = append(ids, field+"-error")
	}
	if help != "" {
		ids = append(ids, field+"-help")
	}
	return strings.Join(ids, " ")
}

// Browsers is the /count list of the sessions that counted from this
// browser's address lately ("the browsers on this computer").
type Browsers struct {
	Addr string // the client address, as -trusted-proxies resolves it
	// ThisMachine: the browsers are on the computer the server runs on
	// (any loopback address).
	ThisMachine bool
	Rows        []BrowserRow
	More        int           // browsers that counted in the window but are not listed
	Presence    bool          // rows say whether a page of them is open (not in memory mode)
	Max         int           // how many are listed at most (and this one)
	Window      time.Duration // how long a browser stays on the list
	Now         time.Time
}

// BrowserRow is one browser: never its token, never its user's name.
type BrowserRow struct {
	Device    string
	LoggedIn  bool
	Views     int
	CountedAt time.Time
	This      bool // the browser looking at the page
	Open      bool // a page of it is open now (its live stream listens)
}

// Trace is what one request sent to Redis, in order.
type Trace struct {
	Method   string // GET
	Path     string // /count
	Commands []TraceCommand
	Dropped  int // commands sent but not kept (a trace is bounded)
	// InProcess: -store memory, where sessions and the live stream never
	// reach Redis, so no page may name their commands.
	InProcess bool
}

// TraceCommand is one Redis command of a Trace, as it was sent.
type TraceCommand = redistrace.Command

// RedisServer names the Redis the app uses, for the panel and its
// redis-cli examples; it never holds a password.
type RedisServer struct {
	Where string // "127.0.0.1:6391, database 0"
	CLI   string // "redis-cli -u redis://127.0.0.1:6391/0"
}

package views

import (
	"encoding/json"

	"github.com/a-h/templ"
)

// Names that cross from the templates to the handlers and the browser (ids
// read back from HX-Target, events): one spelling, so a rename breaks no side.
const (
	// Element ids: htmx targets and triggers.
	IDContent       = "content"            // the page's main region; forms swap into it
	IDRedisPanel    = "redis-panel"        // the Redis panel at the bottom of every page
	IDViewCount     = "view-count"         // the counter's number
	IDSessionList   = "session-list"       // the sessions page's table
	IDStaySignedIn  = "stay-signed-in"     // the "stay signed in" control
	IDIdleDeadline  = "idle-deadline"      // the profile's idle-timeout line
	IDSessionHook   = "session-hook"       // SessionEndedHook's element
	IDLiveStatus    = "live-status"        // the page's line about the server (restarting, unreachable, back)
	IDRestartStatus = "restart-status"     // beside "Restart this server": the same news where the click was
	IDProcess       = "process"            // the footer's process badge, replaced when a new process answers
	IDRedisTrace    = "redis-trace"        // the panel's "what this request did in Redis"
	IDBrowsers      = "browsers"           // the counter page's list of browsers
	IDThisViews     = "this-browser-views" // this browser's count in that list: it changes with the counter
	IDLabLive       = "lab-live"           // /lab's steps and path, sent again by GET /lab/steps

	// EventSessionChanged (an HX-Trigger response header) tells the Redis
	// panel to reload: the session's stored data changed.
	EventSessionChanged = "session-changed"
	// EventLabChanged (HX-Trigger) tells /lab to read its steps again: an
	// experiment recorded an outcome.
	EventLabChanged = "lab-changed"

	// Server-sent events of GET /live.
	SSECount    = "count"    // the session's new view count (data: the number)
	SSEEnded    = "ended"    // the session ended: its pages leave
	SSESessions = "sessions" // the user's list of sessions changed
	SSEIdle     = "idle"     // the session ends soon (data: the warning)
	SSEHello    = "hello"    // first on every stream: the process that answered (data: LiveHello)
	SSEBrowsers = "browsers" // a browser on this computer counted (data: the list)
	SSEOwn      = "own"      // what the stream sent to Redis as it opened (data: WriteOwnTrace)
	// SSEMadeRoom: the stream ends to make room for another address's, as if
	// refused (data: what the page says; its retry field: when to ask again).
	SSEMadeRoom = "made-room"
	// SSELab: news for /lab: what it shows of the address's browsers changed
	// (data: Lab.News, sent when it differs from the stream's last), or the
	// session's lab record did (data: LabNewsRecord).
	SSELab = "lab"
	// LabNewsRecord is SSELab's data for news of the lab record: no
	// Lab.News is spelled so, so every page reads its steps again.
	LabNewsRecord = "record"

	// static/live.js's own attributes and events (it is not htmx's SSE
	// extension, so it does not borrow that extension's names).
	AttrLive     = "data-live"      // on the element that makes a page listen: the stream's URL
	AttrLiveSwap = "data-live-swap" // an element whose content an event's data replaces: the event's name
	liveTrigger  = "live:"          // hx-trigger prefix: "live:count" fires when a count event arrives
	// AttrLiveShown on an element with a live trigger: the event's data that
	// it already shows, so an event carrying it triggers nothing.
	AttrLiveShown = "data-live-shown"
	// Events the script dispatches on <body> for whoever listens (the
	// browser tests do): the stream opened, an event arrived (detail.type).
	EventLiveOpen    = "live-open"
	EventLiveMessage = "live-message"

	// Relative times that the script keeps true while a page stays open
	// (views/relative.go): the moment a text counts from or to, and the
	// meta that holds the server's clock when the page was drawn.
	AttrAgo   = "data-ago"
	AttrUntil = "data-until"
	metaNow   = "sessionlab-now"

	// LiveHello's attributes, which the script reads.
	AttrProcess     = "data-process"
	AttrHasSession  = "data-session"
	AttrStoredViews = "data-views"
	testIDLiveBack  = "live-back"
)

// target is an id as an htmx selector.
func target(id string) string { return "#" + id }

// liveStream marks the element that makes a page listen to /live.
func liveStream() templ.Attributer { return liveStreamAttrs }

// liveSwap marks an element whose content the event's data replaces.
func liveSwap(event string) templ.Attributer {
	if a, ok := liveSwaps[event]; ok {
		return a
	}
	return &fixedAttrs{{Key: AttrLiveSwap, Value: event}}
}

// fixedAttrs are a spread's attributes made once: a templ.Attributes is a
// map that each call builds and each render sorts into a new slice.
type fixedAttrs []templ.KeyValue[string, any]

func (a *fixedAttrs) Items() []templ.KeyValue[string, any] { return *a }

var (
	liveStreamAttrs = &fixedAttrs{{Key: AttrLive, Value: "/live"}}
	liveSwaps       = func() map[string]*fixedAttrs {
		m := map[string]*fixedAttrs{}
		for _, e := range []string{SSECount, SSEEnded, SSESessions, SSEIdle, SSEHello, SSEBrowsers, SSEOwn} {
			m[e] = &fixedAttrs{{Key: AttrLiveSwap, Value: e}}
		}
		return m
	}()
)

// liveTriggerOn is an hx-trigger on one of the stream's events.
func liveTriggerOn(event string) string { return liveTrigger + event }

// liveNames is every name static/live.js uses, given to it in its script
// tag's data-names, so the script and the templates cannot drift apart.
var liveNames = func() string {
	b, err := json.Marshal(map[string]string{
		"live": AttrLive, "swap": AttrLiveSwap, "trigger": liveTrigger,
		"open": EventLiveOpen, "message": EventLiveMessage,
		"hello": SSEHello, "count": SSECount, "ended": SSEEnded, "madeRoom": SSEMadeRoom, "shown": AttrLiveShown,
		"process": AttrProcess, "session": AttrHasSession, "views": AttrStoredViews,
		"status": IDLiveStatus, "restartStatus": IDRestartStatus, "processBadge": IDProcess, "back": testIDLiveBack,
		"sessionChanged": EventSessionChanged, "ago": AttrAgo, "until": AttrUntil, "now": metaNow,
	})
	if err != nil {
		panic(err)
	}
	return string(b)
}()

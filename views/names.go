package views

// Names that cross from the templates to the handlers and the browser: an
// element id a handler reads back from HX-Target or HX-Trigger, an event a
// handler sends that a template listens for. Templates and handlers both use
// these constants, so a rename cannot break one side silently.
const (
	// Element ids: htmx targets and triggers.
	IDContent      = "content"        // the page's main region; forms swap into it
	IDRedisPanel   = "redis-panel"    // the Redis panel at the bottom of every page
	IDViewCount    = "view-count"     // the counter's number
	IDSessionList  = "session-list"   // the sessions page's table
	IDStaySignedIn = "stay-signed-in" // the "stay signed in" control
	IDIdleDeadline = "idle-deadline"  // the profile's idle-timeout line
	IDSessionHook  = "session-hook"   // SessionEndedHook's element
	IDLiveStatus   = "live-status"    // the page's line about the server (restarting, unreachable, back)
	IDProcess      = "process"        // the footer's process badge, replaced when a new process answers
	IDRedisTrace   = "redis-trace"    // the panel's "what this request did in Redis"
	IDBrowsers     = "browsers"       // the counter page's list of browsers
	IDLabLive      = "lab-live"       // /lab's steps and path, sent again by GET /lab/steps

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
)

// target is an id as an htmx selector.
func target(id string) string { return "#" + id }

// sseTrigger is an hx-trigger on a server-sent event.
func sseTrigger(event string) string { return "sse:" + event }

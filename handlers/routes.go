package handlers

import (
	"net/http"
	"net/http/pprof"

	"github.com/sessionlab/sessionlab/internal/metrics"
	"github.com/sessionlab/sessionlab/static"
)

// Routes is the app's table of contents. Static files and health checks sit
// outside the session middleware: they never touch a session.
func (a *App) Routes() http.Handler {
	h, _ := a.routes()
	return h
}

// routes also returns every pattern it registered, so that a test can walk
// them all (every state-changing route must refuse cross-origin requests).
func (a *App) routes() (http.Handler, []string) {
	// The root marks each page's route (below), not the pages mux: the
	// session middleware in between may answer first (a 503 when Redis is out).
	pages := &patternMux{}
	pages.HandleFunc("GET /{$}", a.home)
	pages.HandleFunc("GET /register", a.registerForm)
	pages.HandleFunc("POST /register", a.register)
	pages.HandleFunc("GET /login", a.loginForm)
	pages.HandleFunc("POST /login", a.login)
	pages.HandleFunc("POST /logout", a.logout)
	pages.HandleFunc("GET /count", a.count)
	pages.HandleFunc("GET /redis", a.redisPage)
	pages.HandleFunc("GET /live", a.liveEvents)
	pages.HandleFunc("GET /lab", a.labPage)
	pages.HandleFunc("GET /lab/steps", a.labSteps)
	if a.Lab {
		pages.HandleFunc("POST /lab/switch/{switch}", a.labSwitch)
		pages.HandleFunc("POST /lab/read", a.labRead)
		pages.HandleFunc("POST /lab/use", a.labUse)
	}
	if a.Restart != nil {
		pages.HandleFunc("POST /restart", a.restart)
		pages.HandleFunc("/restart", a.restart) // 404 to strangers whatever the method (restart.go)
	}
	// Login required: anyone else gets loginRequired (access.go).
	pages.Handle("GET /profile", a.requireLogin(a.profile))
	pages.Handle("GET /sessions", a.requireLogin(a.sessionsPage))
	pages.Handle("POST /sessions/{id}/revoke", a.requireLogin(a.revokeSession))
	pages.Handle("POST /sessions/revoke-others", a.requireLogin(a.revokeOthers))
	pages.Handle("POST /password", a.requireLogin(a.changePassword))
	pages.Handle("POST /session/touch", a.requireLogin(a.staySignedIn))

	root := &routeMux{metrics: a.Metrics}
	root.readOnly("/static/", static.Handler())
	root.readOnly("/healthz", http.HandlerFunc(a.healthz))
	root.readOnly("/readyz", http.HandlerFunc(a.readyz))
	withSession := func(h http.Handler) http.Handler {
		return redisBudget(a.crossOriginProtection(limitBody(a.loadAndSave(h))))
	}
	root.Handle("/", withSession(a.problemPages(&pages.ServeMux)))
	// A page's own pattern goes straight to the pages mux, which matches it
	// as the root did; only the rest needs problemPages' extra match. A path
	// matched by "/" alone also cost the root mux a second match (for a
	// trailing-slash redirect) and allocations in each fallback. The root's
	// match also names the route, for whichever layer answers.
	known := withSession(&pages.ServeMux)
	for _, p := range pages.patterns {
		root.Handle(p, known)
	}

	return a.observe(a.recoverPanics(a.secureHeaders(pathless(&root.ServeMux)))), root.patterns
}

// pathless answers a CONNECT without a path, to an authority (a proxy
// probe), with the mux's plain 404, as the root mux did before it held the
// pages' patterns: the mux does not clean a CONNECT's path, and the home
// page's "GET /{$}" matches the empty one but for the method, a 405 with
// "Allow: GET, HEAD". The mux cleans any other request's empty path to "/".
func pathless(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect && r.URL.Path == "" {
			http.NotFound(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// OperatorRoutes are for whoever runs the process, on -debug-addr only:
// metrics, stream counts and the profiler.
func (a *App) OperatorRoutes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.Metrics.Handler())
	mux.HandleFunc("GET /debug/live", a.liveStats)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// patternMux is a ServeMux that remembers its patterns.
type patternMux struct {
	http.ServeMux
	patterns []string
}

func (m *patternMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *patternMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// routeMux is the root patternMux: it marks each request with the metrics of
// the route it matched (see observe) before any middleware can answer it.
// "/" is no route: what reaches it matched no page (404, 405).
type routeMux struct {
	patternMux
	metrics *metrics.Metrics
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	if pattern != "/" {
		h = routed(m.metrics.RouteOf(pattern), h)
	}
	m.patternMux.Handle(pattern, h)
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h)) // not patternMux's, which would not mark the route
}

// readOnly serves h for GET and HEAD at path, and other methods 405, which
// would otherwise fall through to "/" and its 404.
func (m *routeMux) readOnly(path string, h http.Handler) {
	m.Handle("GET "+path, h)
	m.ServeMux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		answerPlain(w, failMethodNotAllowed, failMethodNotAllowed.Message+"\n")
	})
}

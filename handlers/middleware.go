package handlers

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/sessionlab/sessionlab/internal/redisconn"
)

// csp allows scripts, styles and requests from this origin only: htmx runs
// from a vendored file and is configured by a meta tag, so nothing inline.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// secureHeaders sets the headers every response carries; HSTS with
// -cookie-secure, except on loopback, where it would pin every local port.
func (a *App) secureHeaders(next http.Handler) http.Handler {
	hsts := a.Sessions.Cookie.Secure
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if hsts && !loopbackHost(r.Host) {
			h.Set("Strict-Transport-Security", hstsValue)
		}
		h[hdrCSP] = cspValue
		h[hdrContentTypeOpts] = nosniff
		h[hdrReferrerPolicy] = sameOrigin
		h[hdrFrameOptions] = denyFraming
		next.ServeHTTP(w, r)
	})
}

// hstsValue pins HTTPS for a year (what hstspreload.org asks as a minimum),
// for this host only: subdomains may be other people's sites.
const hstsValue = "max-age=31536000"

// maxFormBytes bounds request bodies; forms here are a few hundred bytes.
const maxFormBytes = 64 << 10

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		next.ServeHTTP(w, r)
	})
}

// crossOriginProtection rejects state-changing requests sent by other sites
// (Sec-Fetch-Site, else Origin), which is the CSRF defence for every POST.
func (a *App) crossOriginProtection(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Once a minute: a page on any site can make its visitors' browsers
		// send these.
		a.tally(r.Context(), tallyEvent{kind: "cross-origin", msg: "cross-origin request blocked", level: slog.LevelWarn,
			names: byOrigin, key: blockedOrigin(r.Header.Get("Origin")),
			last: []any{"last_method", clipped(r.Method, maxValueLen), "last_route", a.route(r),
				"last_sec_fetch_site", clipped(r.Header.Get("Sec-Fetch-Site"), maxValueLen)}})
		a.answer(w, r, failCrossSite)
	}))
	return cop.Handler(next)
}

// problemPages turns the mux's plain-text 404 and 405 into pages; the mux
// still decides which it is and sets Allow.
func (a *App) problemPages(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r) // not h: only the mux fills in r.PathValue
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if allow := rec.Header().Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		switch rec.Code {
		case http.StatusMethodNotAllowed:
			f := failMethodNotAllowed
			f.Message = "This address does not accept " + r.Method + " requests."
			a.answer(w, r, f)
		default:
			a.notFound(w, r)
		}
	})
}

// notFound is the answer for an address with no page.
func (a *App) notFound(w http.ResponseWriter, r *http.Request) {
	a.answer(w, r, failNotFound)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (a *App) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.Log.ErrorContext(r.Context(), "panic", "method", r.Method, "route", a.route(r), "panic", v)
				w.Header().Set("Connection", "close")
				answerPlain(w, failInternal, "Internal server error\n")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// redisBudget gives each request redisconn.RequestBudget for all its Redis
// work, so a hung Redis cannot hold it for each command's limit in turn.
func redisBudget(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(redisconn.WithBudget(r.Context(), redisconn.RequestBudget)))
	})
}

// maxOriginLen is as much of an Origin as a line names: any real site's
// origin fits, and a sender cannot make a line of megabytes.
const maxOriginLen = 100

// blockedOrigin is how a line names a blocked request's Origin, which its
// sender writes: scheme://host[:port] (a path, query or user is no origin's,
// and could hold a token), "null", "(no Origin)", or "(not an origin)" for
// anything that could forge the line's list; cut to maxOriginLen.
func blockedOrigin(h string) string {
	switch h {
	case "":
		return "(no Origin)"
	case "null":
		return h
	}
	u, err := url.Parse(h)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "(not an origin)"
	}
	o := u.Scheme + "://" + u.Host
	for _, c := range []byte(o) {
		if !originByte(c) {
			return "(not an origin)"
		}
	}
	return clipped(o, maxOriginLen)
}

// originByte reports whether c may appear in a scheme://host[:port] a line
// names: never a space, comma or parenthesis, which would forge its list.
func originByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("+-.:/[]_%", c) >= 0
}

// maxValueLen is as much of a method or a Fetch header as a line names: the
// standard ones fit.
const maxValueLen = 16

// clipped is s cut to n bytes, marked when cut: a value the client writes
// (an Origin, a method, a header) stays short in a line.
func clipped(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

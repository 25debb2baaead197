package handlers

import (
	"net/http"
	"net/http/httptest"

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
		if ok, n := a.blocked.due("cross-origin"); ok {
			a.Log.WarnContext(r.Context(), "cross-origin request blocked", "method", r.Method, "route", a.route(r),
				"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "blocked", n)
		}
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

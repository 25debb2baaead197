package handlers

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/sessionlab/sessionlab/internal/metrics"
	"github.com/sessionlab/sessionlab/internal/requestlog"
)

// observed is one request as the app watches it: its status, its id and
// route for the logs and metrics. One allocation per request.
type observed struct {
	statusRecorder
	info requestlog.Info
}

// observe is the outermost middleware: request id, metrics and access log.
// It logs the route pattern, never the path or a header that could hold a token.
func (a *App) observe(next http.Handler) http.Handler {
	accessLevel := slog.LevelDebug
	if a.AccessLog {
		accessLevel = slog.LevelInfo
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		o := &observed{statusRecorder: statusRecorder{ResponseWriter: w}}
		o.info.ID, o.info.Proxied = a.requestID(r)
		w.Header()[hdrRequestID] = []string{o.info.ID}
		ctx := requestlog.With(r.Context(), &o.info)
		next.ServeHTTP(&o.statusRecorder, r.WithContext(ctx))

		took := time.Since(start)
		status := o.status
		if status == 0 {
			status = http.StatusOK // the handler wrote nothing
		}
		route := o.info.Route
		if route == nil {
			route = a.Metrics.Unmatched()
		}
		route.Observe(status, took)
		if a.Log.Enabled(ctx, accessLevel) {
			a.Log.LogAttrs(ctx, accessLevel, "request", slog.String("method", r.Method),
				slog.String("route", route.Path()), slog.Int("status", status),
				slog.Float64("duration_ms", float64(took.Microseconds())/1000),
				slog.String("client_ip", a.clientIP(r).String()))
		}
	})
}

// requestID is a trusted proxy's X-Request-Id (so nginx's log and the app's
// agree, and a count nginx retries is counted once), else a new one: a
// client's own could pose as someone else's.
func (a *App) requestID(r *http.Request) (id string, proxied bool) {
	if id := header(r.Header, hdrRequestID); id != "" && requestlog.ValidID(id) && a.fromTrustedProxy(r) {
		return id, true
	}
	return requestlog.NewID(), false
}

// routed marks the request as served by route, for observe.
func routed(route *metrics.Route, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := requestlog.From(r.Context()); info != nil {
			info.Route = route
		}
		h.ServeHTTP(w, r)
	})
}

// fromTrustedProxy reports whether the request's peer is one of
// -trusted-proxies.
func (a *App) fromTrustedProxy(r *http.Request) bool {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	return err == nil && a.trusted(peer.Addr().Unmap())
}

// route names r's route for a log line as the access log does: the pattern
// that matched, "none" when none did. Never the path: the client writes it,
// and it can hold anything, a session token included.
func (a *App) route(r *http.Request) string {
	if info := requestlog.From(r.Context()); info != nil && info.Route != nil {
		return info.Route.Path()
	}
	return a.Metrics.Unmatched().Path()
}

// routePattern is r's route with its method, as the route table declares it
// ("POST /login"; "none"), for a line that tallies requests by route.
func (a *App) routePattern(r *http.Request) string {
	if info := requestlog.From(r.Context()); info != nil && info.Route != nil {
		return info.Route.Pattern()
	}
	return a.Metrics.Unmatched().Pattern()
}

package handlers

import (
	"log/slog"
	"net/http"

	"github.com/sessionlab/sessionlab/internal/throttle"
)

// Some lines are about what a client did to its own request: it left before
// the answer, its form body never came, it sent a token a login renewed a
// moment ago. A client can cause them with every request it makes, so they are
// logged as refusals are (refusals.go): a line a minute per kind, which says
// how many such requests since the last line, from how many clients (as the
// throttles count them), the clients that sent most, and the latest one's
// method, route and error.

// byRequests names a line's fields for requests counted by client.
var byRequests = tallyNames{count: "requests", distinct: "clients", key: "client"}

// clientCaused counts r under msg and logs the line at Info when one is due;
// err (nil for none) is the latest request's.
func (a *App) clientCaused(r *http.Request, msg string, err error) {
	s, ok := a.clientLines.due(msg, throttle.Subject(a.clientIP(r)))
	if !ok {
		return
	}
	args := append(s.argsAs(byRequests), "last_method", clipped(r.Method, maxValueLen), "last_route", a.route(r))
	if err != nil {
		args = append(args, "last_err", err)
	}
	a.Log.Log(r.Context(), slog.LevelInfo, msg, args...)
}

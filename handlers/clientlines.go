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
// method, route and error. The lines are written as refusals' are
// (tallylog.go): the first at once, the rest at the end of the minute.

// byRequests names a line's fields for requests counted by client.
var byRequests = tallyNames{count: "requests", distinct: "clients", key: "client"}

// clientCaused counts r under msg, a line at Info; err (nil for none) is the
// latest request's.
func (a *App) clientCaused(r *http.Request, msg string, err error) {
	last := []any{"last_method", clipped(r.Method, maxValueLen), "last_route", a.route(r)}
	if err != nil {
		last = append(last, "last_err", err)
	}
	a.tally(r.Context(), tallyEvent{kind: msg, msg: msg, level: slog.LevelInfo, names: byRequests,
		key: throttle.Subject(a.clientIP(r)), last: last})
}

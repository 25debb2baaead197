package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/alexedwards/scs/v2"

	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// isHTMX: the request wants a fragment (a history restore says HX-Request
// too, but needs the whole page).
func isHTMX(r *http.Request) bool {
	return header(r.Header, hdrHXRequest) == "true" && header(r.Header, hdrHXHistory) != "true"
}

// render writes a page: the partial alone for htmx, else the whole layout.
// No page is stored: every page shows who is logged in.
func (a *App) render(w http.ResponseWriter, r *http.Request, status int, title string, content templ.Component) {
	p := a.page(r.Context(), title)
	if isHTMX(r) {
		a.write(w, r, status, views.Fragment(p, content))
		return
	}
	a.write(w, r, status, layout(r.Context(), p, content))
}

// layout is the whole page around content; one that says the session ended
// expires its cookie (see forgetEnded).
func layout(ctx context.Context, p views.Page, content templ.Component) templ.Component {
	st, _ := stateOf(ctx)
	st.tell(p)
	return views.Layout(p, content)
}

// renderForm is render for a form's answer: htmx gets its expected refusals
// (401, 409, 422) as 200 with the status in FormStatusHeader, since browsers
// log a script's 4xx as an error; without JavaScript the status stays.
func (a *App) renderForm(w http.ResponseWriter, r *http.Request, status int, title string, content templ.Component) {
	if isHTMX(r) && status != http.StatusOK {
		w.Header().Set(FormStatusHeader, strconv.Itoa(status))
		status = http.StatusOK
	}
	a.render(w, r, status, title, content)
}

// FormStatusHeader carries, on an htmx answer sent as 200, the status the
// same answer has as a whole page (see renderForm).
const FormStatusHeader = "Sessionlab-Status"

// write renders one component as the response.
func (a *App) write(w http.ResponseWriter, r *http.Request, status int, c templ.Component) {
	buf := getBuffer()
	defer putBuffer(buf)
	// Rendered even if the client left: a cancelled render is no server error.
	if err := c.Render(context.WithoutCancel(r.Context()), buf); err != nil {
		a.Log.ErrorContext(r.Context(), "render failed", "method", r.Method, "route", a.route(r), "err", err)
		answerPlain(w, failInternal, "Internal server error\n")
		return
	}
	h := w.Header()
	h[hdrContentType] = htmlType
	h[hdrCacheControl] = noStore
	h[hdrVary] = append(h[hdrVary], "HX-Request, HX-History-Restore-Request")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (a *App) page(ctx context.Context, title string) views.Page {
	p := views.Page{Title: title, Instance: a.Instance, Process: a.process(), Banner: a.Banner,
		DemoControls: a.Restart != nil}
	l := a.labOf(ctx)
	if c, ok := a.asChecked(ctx); ok {
		p.User = c.username
		p.Lab = a.labProgressOf(ctx, l, true)
	} else {
		if u, ok := a.currentUser(ctx); ok {
			p.User = u.Username
		}
		p.Lab = a.labProgress(ctx, l)
	}
	st, _ := stateOf(ctx)
	p.LostSession = st.isLost()
	p.UnreadableSession = st.isUnreadable()
	if st != nil && !st.explained {
		p.UnreadableAccount = st.unreadableAccount
	}
	if st.isEnded() {
		p.EndedSession = views.EndedInRedis
		if a.InProcess {
			p.EndedSession = "this server's memory"
		}
	}
	p.LabWeakened = l.Weakened()
	return p
}

// process is this process, as pages show it.
func (a *App) process() views.Process {
	return views.Process{ID: a.ProcessID, Instance: a.Instance, Started: a.Started, Now: time.Now()}
}

// origin is which process created the request's session; one this request
// creates gets it now, so its first page says it too.
func (a *App) origin(ctx context.Context) views.Origin {
	o, ok := a.Sessions.Get(ctx, sessions.KeyOrigin).(sessions.Origin)
	if !ok && a.Sessions.Status(ctx) == scs.Modified {
		o = a.recordOrigin(ctx)
	}
	return views.Origin{Process: o.Process, Instance: o.Instance, Created: o.At, Here: a.process()}
}

// recordOrigin records that this process creates the session, now; the
// write that stores the session keeps the same moment as its last activity.
func (a *App) recordOrigin(ctx context.Context) sessions.Origin {
	o := sessions.Origin{Process: a.ProcessID, Instance: a.Instance, At: time.Now().UTC().Truncate(time.Millisecond)}
	a.Sessions.Put(ctx, sessions.KeyOrigin, o)
	if st, ok := stateOf(ctx); ok {
		st.originAt = o.At
	}
	return o
}

// currentUser is the logged-in user, if the request has a session at all.
func (a *App) currentUser(ctx context.Context) (sessions.User, bool) {
	if _, ok := stateOf(ctx); !ok {
		return sessions.User{}, false
	}
	u, ok := a.Sessions.Get(ctx, sessions.KeyUser).(sessions.User)
	return u, ok && u.Username != ""
}

// reportOutage logs a Redis outage once per kind and minute, with how many
// requests it failed since the last line and on which routes: an outage
// fails every request, and a line per request would bury everything else.
func (a *App) reportOutage(kind redisconn.Kind, r *http.Request, err error) {
	a.tally(r.Context(), tallyEvent{kind: outageKind(kind), msg: "Redis cannot serve", level: slog.LevelError,
		names: byRoute, key: a.routePattern(r), head: []any{"kind", string(kind)},
		last: []any{"status", http.StatusServiceUnavailable, "last_err", err}})
}

// outageKind is the tally kind of an outage's line.
func outageKind(k redisconn.Kind) string { return "Redis cannot serve: " + string(k) }

// parseForm reads a form body of bounded size. It answers 413, 408 or 400
// itself and reports whether the handler may go on.
func (a *App) parseForm(w http.ResponseWriter, r *http.Request) bool {
	if r.ContentLength > maxFormBytes {
		// Announced too large: no need to wait for a body that would be
		// refused (the read timeout would end the wait with a 408).
		a.answer(w, r, failTooLarge)
		return false
	}
	err := r.ParseForm()
	if err == nil {
		return true
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		a.answer(w, r, failTooLarge)
		return false
	}
	if netErr, ok := errors.AsType[net.Error](err); ok && netErr.Timeout() || clientGone(r) {
		// The body did not come within the server's read timeout, or the
		// client left: a slow or vanished client, not a server error.
		a.clientCaused(r, "form body not received", err)
		w.Header().Set("Connection", "close")
		a.answer(w, r, failFormTimeout)
		return false
	}
	a.answer(w, r, failMalformedForm)
	return false
}

package handlers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/live"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// Every failed request is answered through this file (as in wtf's error.go):
// a failure kind maps to a status, the words the user sees and the headers.

// failure is how one kind of failed request is answered.
type failure struct {
	Status         int
	Title, Message string
	// RetryAfter, when set, is sent as Retry-After (whole seconds, rounded up).
	RetryAfter time.Duration
}

// retryRedis is how soon a client may retry after Redis could not serve,
// and after any other 503.
const retryRedis = 5 * time.Second

var (
	failInternal = failure{Status: http.StatusInternalServerError, Title: "Something went wrong",
		Message: "Something went wrong on our side, and nothing was changed. Please try again."}
	failRedisDown = failure{Status: http.StatusServiceUnavailable, Title: "Session store unavailable",
		Message:    "The session store (Redis) cannot serve right now, so nothing was changed. Please try again in a moment.",
		RetryAfter: retryRedis}
	// Redis got a change and did not answer: it may run it yet.
	failRedisMayHaveRun = failure{Status: http.StatusServiceUnavailable, Title: "Session store unavailable",
		Message: "The session store (Redis) stopped answering, so this may or may not have been saved. " +
			"Please reload the page in a moment to see, before you try again.",
		RetryAfter: retryRedis}
	// Sentinel: the master has the change and no replica confirmed a copy
	// in time (redisconn.NotReplicated), so a failover may discard it.
	failRedisNotReplicated = failure{Status: http.StatusServiceUnavailable, Title: "Session store unavailable",
		Message: "The session store (Redis) took this, but its standby did not confirm a copy in time, so this may or may not have been saved. " +
			"Please reload the page in a moment to see, before you try again.",
		RetryAfter: retryRedis}
	// Every password-hashing slot stayed taken (accounts.ErrBusy): a flood
	// of logins, or a class logging in at once on a small machine.
	failPasswordsBusy = failure{Status: http.StatusServiceUnavailable, Title: "Busy checking passwords",
		Message:    "This server is checking many passwords at once right now, so yours was not checked and nothing was changed. Please try again in a few seconds.",
		RetryAfter: retryRedis}
	failShuttingDown = failure{Status: http.StatusServiceUnavailable, Title: "Server stopping",
		Message: "This server is stopping. Please try again in a moment.", RetryAfter: retryRedis}
	failNotReady = failure{Status: http.StatusServiceUnavailable, Title: "Not ready", RetryAfter: retryRedis}
	// After SIGTERM (-drain): a load balancer stops sending; the instance still serves.
	failDraining  = failure{Status: http.StatusServiceUnavailable, Title: "Draining"}
	failCrossSite = failure{Status: http.StatusForbidden, Title: "Request blocked",
		Message: "This request came from another site, so it was refused to protect your session. Use the forms on this site."}
	failNotFound = failure{Status: http.StatusNotFound, Title: "Page not found",
		Message: "There is no page at this address."}
	failMethodNotAllowed = failure{Status: http.StatusMethodNotAllowed, Title: "Method not allowed",
		Message: "This address does not accept that method."}
	failRenewed = failure{Status: http.StatusConflict, Title: "Session renewed",
		Message: "Your session got a new token a moment ago (you logged in, or sent this form twice, or another browser that holds a copy of its ID renewed it), and this request still carried the previous one, so nothing was done. Reload the page to go on. A browser that held only a copy of the old ID is left with no session: for up to " +
			strconv.Itoa(int(sessions.RenewalInFlight/time.Second)) + " seconds its pages say this, then that its session ended."}
	failEndedMeanwhile = failure{Status: http.StatusUnauthorized, Title: "Session ended",
		Message: "This session was ended a moment ago, from another browser or tab (a logout, “Log out everywhere else” or a password change), so nothing was done. Please log in again."}
	failRevokedAsRenewed = failure{Status: http.StatusConflict, Title: "Session ended",
		Message: "Another of your sessions logged out everywhere else, or changed the password, at the same moment; that ended this one as it started. Please log in again."}
	failRevokeOwnSession = failure{Status: http.StatusBadRequest, Title: "That is this session",
		Message: "To end the session you are using, log out."}
	failTooLarge = failure{Status: http.StatusRequestEntityTooLarge, Title: "Request too large",
		Message: "That form was larger than this site accepts."}
	failFormTimeout = failure{Status: http.StatusRequestTimeout, Title: "Request timeout",
		Message: "The form did not arrive in time. Please send it again."}
	failTooManyStreams = failure{Status: http.StatusTooManyRequests, Title: "Too many live pages",
		RetryAfter: streamRetryAfter}
	failMalformedForm = failure{Status: http.StatusBadRequest, Title: "Malformed form",
		Message: "The form could not be read. Please send it again from the page."}
	// The lab's experiments (lab.go, -lab only).
	failLabSwitchValue = failure{Status: http.StatusBadRequest, Title: "Not a switch position",
		Message: "A lab switch is on=1 (the safe default) or on=0 (weakened on purpose); nothing was changed."}
	failLabNoSession = failure{Status: http.StatusConflict, Title: "No session yet",
		Message: "This browser has no session yet: count a view or log in first."}
	failLabRead = failure{Status: http.StatusUnprocessableEntity, Title: "Not what this session's cookie allows",
		Message: "What the script read does not match this session's cookie as the server issued it. Reload the page and read again."}
	failLabNotToken = failure{Status: http.StatusUnprocessableEntity, Title: "Not a session ID",
		Message: "That is not a session ID this app issues (43 characters of A-Z, a-z, 0-9, - and _)."}
	failLabNoSuchSession = failure{Status: http.StatusNotFound, Title: "No such session",
		Message: "No live session has that ID (it ended, or a login or a lab switch renewed it)."}
)

// failureOf classifies an error. wrote: the request had sent Redis a change.
func failureOf(err error, wrote bool) failure {
	if errors.Is(err, live.ErrClosed) {
		return failShuttingDown
	}
	if errors.Is(err, accounts.ErrBusy) {
		return failPasswordsBusy
	}
	kind, ok := redisconn.Unavailable(err)
	switch {
	case !ok:
		return failInternal
	case kind == redisconn.NotReplicated: // only a write waits for a replica
		return failRedisNotReplicated
	case kind.MayHaveRun() && wrote:
		return failRedisMayHaveRun
	default:
		return failRedisDown
	}
}

// setHeaders writes the failure's headers: the one place Retry-After is set.
func (f failure) setHeaders(h http.Header) {
	if f.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(wholeSeconds(f.RetryAfter)))
	}
}

// wholeSeconds rounds a wait up to whole seconds, at least one.
func wholeSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// answer sends a failure: its headers and the problem page.
func (a *App) answer(w http.ResponseWriter, r *http.Request, f failure) {
	a.answerWith(w, r, f, views.ProblemPage(problemOf(r, f)))
}

// problemOf is the problem page's model of f; a lab step's refusal links
// back to the lab, where the experiment is.
func problemOf(r *http.Request, f failure) views.Problem {
	p := views.Problem{Status: f.Status, Title: f.Title, Message: f.Message}
	if strings.HasPrefix(r.URL.Path, "/lab/") {
		p.Back, p.BackText = "/lab", "Back to the Lab"
	}
	return p
}

// answerWith sends a failure with a page of its own (a form that says why).
func (a *App) answerWith(w http.ResponseWriter, r *http.Request, f failure, page templ.Component) {
	f.setHeaders(w.Header())
	a.render(w, r, f.Status, f.Title, page)
}

// refuse sends a refusal expected in normal use (a lab check, a second tab
// after a login): as renderForm, htmx gets it as 200 with the status in a header.
func (a *App) refuse(w http.ResponseWriter, r *http.Request, f failure) {
	f.setHeaders(w.Header())
	a.renderForm(w, r, f.Status, f.Title, views.ProblemPage(problemOf(r, f)))
}

// answerPlain sends a failure as plain text, for probes or when no page renders.
func answerPlain(w http.ResponseWriter, f failure, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	f.setHeaders(h)
	w.WriteHeader(f.Status)
	_, _ = io.WriteString(w, text)
}

// fail answers a request that could not be served because of our side. The
// error is logged, never shown; it names no token (see LogID).
func (a *App) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.failAfterWrite(w, r, err, !safeMethod(r.Method))
}

// failAfterWrite is fail for a request that did (wrote) or did not send Redis
// a change. Usually the method says which; GET /count is the GET that writes.
func (a *App) failAfterWrite(w http.ResponseWriter, r *http.Request, err error, wrote bool) {
	f := failureOf(err, wrote)
	a.logFailure(r, f, err)
	if !clientGone(r) {
		a.answer(w, r, f)
		return
	}
	w.WriteHeader(statusClientGone)
}

// ifSaveFails gives the words for a request whose handler changed something
// for good (an account created, a token renewed, a password changed) and
// then succeeded, should saving the session fail after all: the browser is
// then not logged in, and "nothing was changed" would be untrue.
func (a *App) ifSaveFails(ctx context.Context, title, msg string) {
	if st, ok := stateOf(ctx); ok {
		st.failTitle, st.failMessage = title, msg
	}
}

// ifRevokedAsRenewed gives the words for a credential change that was
// stored, should another session's change end this one before it is kept.
func (a *App) ifRevokedAsRenewed(ctx context.Context, words failWords) {
	if st, ok := stateOf(ctx); ok {
		st.revokedWords = words
	}
}

// failWith is fail in the request's own words: one that failed after it had
// changed something for good must not say "nothing was changed".
func (a *App) failWith(w http.ResponseWriter, r *http.Request, err error, title, msg string) {
	if st, ok := stateOf(r.Context()); ok {
		st.failTitle, st.failMessage = title, msg
	}
	f := failureOf(err, true)
	a.logFailure(r, f, err)
	if clientGone(r) {
		w.WriteHeader(statusClientGone)
		return
	}
	f.Title, f.Message = title, msg
	a.answer(w, r, f)
}

// logFailure logs a failed request: a client that left, or a Redis outage,
// once a minute per kind (counted per request); anything else each time.
func (a *App) logFailure(r *http.Request, f failure, err error) {
	if clientGone(r) {
		a.clientCaused(r, "client gone", err)
		return
	}
	if kind, ok := redisconn.Unavailable(err); ok {
		a.Metrics.Unavailable(string(kind))
		a.reportOutage(kind, r, err)
		return
	}
	if f == failPasswordsBusy {
		a.passwordsBusy(r)
		return
	}
	if f == failShuttingDown {
		a.Log.InfoContext(r.Context(), "refused while stopping", "method", r.Method, "route", a.route(r))
		return
	}
	a.Log.ErrorContext(r.Context(), "request failed", "method", r.Method, "route", a.route(r), "status", f.Status, "err", err)
}

func safeMethod(m string) bool { return m == http.MethodGet || m == http.MethodHead }

// statusClientGone is what the access log records when the client left (nginx's 499).
const statusClientGone = 499

// clientGone reports whether the request's client has left (a Canceled
// context; Redis time limits end with DeadlineExceeded).
func clientGone(r *http.Request) bool {
	return errors.Is(r.Context().Err(), context.Canceled)
}

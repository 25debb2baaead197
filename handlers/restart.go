package handlers

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/sessionlab/sessionlab/internal/throttle"
	"github.com/sessionlab/sessionlab/views"
)

// restart handles POST /restart (-demo-controls only): it answers, then the
// process restarts (see main). Anyone not at the machine gets a 404.
func (a *App) restart(w http.ResponseWriter, r *http.Request) {
	if !a.atTheMachine(w, r) {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		a.answer(w, r, failMethodNotAllowed)
		return
	}
	a.Log.WarnContext(r.Context(), "restart requested", "process", a.ProcessID)
	a.render(w, r, http.StatusAccepted, "Restarting", views.Restarting(a.process()))
	a.Restart()
}

// atTheMachine reports whether a demo control may answer r (else it answers
// 404): a loopback client that named a loopback host, since DNS rebinding can
// reach 127.0.0.1 from any site, but never under the name localhost; and not
// forwarded by a proxy nobody declared, whose clients all seem to be loopback.
func (a *App) atTheMachine(w http.ResponseWriter, r *http.Request) bool {
	ip := a.clientIP(r)
	if ip.IsLoopback() && loopbackHost(r.Host) && !a.forwardedByStranger(r) {
		return true
	}
	a.tally(r.Context(), tallyEvent{kind: "demo control", msg: "demo control refused: not at this machine", level: slog.LevelWarn,
		names: byClient, key: throttle.Subject(ip),
		last: []any{"last_method", clipped(r.Method, maxValueLen), "last_host", clipped(r.Host, maxOriginLen)}})
	a.notFound(w, r)
	return false
}

// loopbackHost: a Host header that names this machine (localhost,
// 127.0.0.0/8 or [::1], with any port).
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

package handlers

import (
	"net/http"

	"github.com/sessionlab/sessionlab/views"
)

// restart handles POST /restart, the demo's "Restart this server": it
// answers, then the process shuts down gracefully and starts afresh (see
// main). It exists only with -demo-controls, answers only clients on this
// machine (anyone else gets the 404 of a page that does not exist), and
// passes the cross-origin protection like every POST.
func (a *App) restart(w http.ResponseWriter, r *http.Request) {
	if ip := a.clientIP(r); !ip.IsLoopback() {
		a.Log.WarnContext(r.Context(), "restart refused: not a loopback client", "client", ip.String())
		a.notFound(w, r)
		return
	}
	a.Log.WarnContext(r.Context(), "restart requested", "process", a.ProcessID)
	a.render(w, r, http.StatusAccepted, "Restarting", views.Restarting(a.process()))
	a.Restart()
}

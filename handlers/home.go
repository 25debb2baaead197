package handlers

import (
	"net/http"

	"github.com/sessionlab/sessionlab/views"
)

// home handles GET /: what the app shows, and whether you are logged in.
func (a *App) home(w http.ResponseWriter, r *http.Request) {
	u, _ := a.currentUser(r.Context())
	a.render(w, r, http.StatusOK, "Home", views.Home(u.Username, a.InProcess))
}

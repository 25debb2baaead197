package handlers

import (
	"net/http"

	"github.com/alexedwards/scs/v2"
)

// SessionCookie is the session cookie's configuration: a generic name,
// HttpOnly, SameSite=Lax, no Domain; with secure, Secure and __Host-, so a
// sibling subdomain cannot plant it (docs/security.md).
func SessionCookie(secure bool) scs.SessionCookie {
	c := scs.SessionCookie{
		Name:     "session",
		HttpOnly: true,
		Path:     "/",
		SameSite: http.SameSiteLaxMode,
		Persist:  false,
	}
	if secure {
		c.Name = "__Host-session"
		c.Secure = true
	}
	return c
}

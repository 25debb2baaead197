package handlers

import (
	"net/http"

	"github.com/alexedwards/scs/v2"
)

// SessionCookie is the session cookie's configuration: a generic name,
// HttpOnly, SameSite=Lax, no Domain. With secure set it is Secure and named
// __Host-, so a sibling subdomain cannot plant or overwrite it. It lasts for
// the browser session unless the user asks to be remembered.
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

package handlers

import (
	"net/http"

	"github.com/alexedwards/scs/v2"
)

// SessionCookie is the session cookie's configuration. The name is generic
// (it says nothing about the framework); HttpOnly keeps it from scripts,
// SameSite=Lax from most cross-site requests, and no Domain keeps it on this
// host. With secure set it is sent over HTTPS only and named with the
// __Host- prefix, which makes the browser insist on Secure, Path=/ and no
// Domain, so a sibling subdomain cannot plant or overwrite it. It lasts for
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

package handlers

import (
	"net/http"

	"github.com/sessionlab/sessionlab/views"
)

// The headers every page reads and sets, by their canonical names used as
// map keys: Header.Get, Set and Add put the name through
// CanonicalMIMEHeaderKey on every call (5 % of a page's instructions in
// process), and Set allocates the value's slice. TestHeaderNamesAreCanonical
// holds the names to http.CanonicalHeaderKey.
const (
	hdrCacheControl    = "Cache-Control"
	hdrContentEncoding = "Content-Encoding"
	hdrContentLength   = "Content-Length"
	hdrContentType     = "Content-Type"
	hdrCSP             = "Content-Security-Policy"
	hdrHXHistory       = "Hx-History-Restore-Request"
	hdrHXRequest       = "Hx-Request"
	hdrHXTarget        = "Hx-Target"
	hdrHXTrigger       = "Hx-Trigger"
	hdrReferrerPolicy  = "Referrer-Policy"
	hdrRequestID       = "X-Request-Id"
	hdrContentTypeOpts = "X-Content-Type-Options"
	hdrFrameOptions    = "X-Frame-Options"
	hdrVary            = "Vary"
)

// headerNames is every name above, for the test.
var headerNames = []string{hdrCacheControl, hdrContentEncoding, hdrContentLength, hdrContentType, hdrCSP,
	hdrHXHistory, hdrHXRequest, hdrHXTarget, hdrHXTrigger, hdrReferrerPolicy, hdrRequestID, hdrContentTypeOpts,
	hdrFrameOptions, hdrVary}

// header is h.Get(name) for a canonical name.
func header(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values every page sends, shared by all responses: net/http only reads
// them, and adding to one of these names appends to a full slice, which
// copies it.
var (
	noStore      = []string{"no-store"}
	htmlType     = []string{"text/html; charset=utf-8"}
	cspValue     = []string{csp}
	nosniff      = []string{"nosniff"}
	sameOrigin   = []string{"same-origin"}
	denyFraming  = []string{"DENY"}
	gzipEncoding = []string{"gzip"}
	// Set on every new session's first page (count.go), a login and a
	// "stay signed in": the page's Redis panel reloads.
	sessionChanged = []string{views.EventSessionChanged}
)

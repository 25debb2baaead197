package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// A form's expected refusals keep their status for a page load, and reach
// htmx as 200 with the status in a header (the browser logs every 4xx of a
// script's request in red): the same answer, shown the same way.
func TestFormRefusalsAreAnswersNotErrors(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t)
	owner := ta.client()
	ta.register(owner, "taken", "taken-password")
	cases := []struct {
		name, path string
		form       url.Values
		status     int
		shows      string
	}{
		{"wrong password", "/login", url.Values{"username": {"taken"}, "password": {"wrong-password"}}, http.StatusUnauthorized, "Invalid username or password."},
		{"login without password", "/login", url.Values{"username": {"taken"}}, http.StatusUnprocessableEntity, "Enter your password."},
		{"register too short", "/register", url.Values{"username": {"x"}, "password": {"long-enough-password"}}, http.StatusUnprocessableEntity, "username-error"},
		{"register taken", "/register", url.Values{"username": {"taken"}, "password": {"long-enough-password"}}, http.StatusConflict, "That username is taken"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			page := ta.post(ta.client(), c.path, c.form)
			if page.status != c.status || page.header.Get(FormStatusHeader) != "" {
				t.Errorf("page load: %d with %s %q, want %d and no such header", page.status, FormStatusHeader, page.header.Get(FormStatusHeader), c.status)
			}
			frag := ta.post(ta.client(), c.path, c.form, "HX-Request", "true")
			if frag.status != http.StatusOK || frag.header.Get(FormStatusHeader) != strconv.Itoa(c.status) {
				t.Errorf("htmx: %d with %s %q, want 200 and %d", frag.status, FormStatusHeader, frag.header.Get(FormStatusHeader), c.status)
			}
			for _, r := range []response{page, frag} {
				if !strings.Contains(r.body, c.shows) {
					t.Errorf("answer does not show %q:\n%s", c.shows, r.body)
				}
			}
		})
	}
}

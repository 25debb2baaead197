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
// script's request in red): the same answer, shown the same way. A throttle's
// 429 is no answer of normal use and stays one (throttle_checked_test.go).
func TestFormRefusalsAreAnswersNotErrors(t *testing.T) {
	t.Parallel()
	ta := newTestApp(t, func(a *App) { a.Lab = true })
	owner := ta.client()
	ta.register(owner, "taken", "taken-password")
	withSession := func() *http.Client {
		c := ta.client()
		ta.anonymousSession(c)
		return c
	}

	cases := []struct {
		name, path string
		ta         *testApp
		client     func() *http.Client // nil: a new browser
		form       url.Values
		status     int
		shows      string
	}{
		{"wrong password", "/login", ta, nil, url.Values{"username": {"taken"}, "password": {"wrong-password"}}, http.StatusUnauthorized, "Invalid username or password."},
		{"login without password", "/login", ta, nil, url.Values{"username": {"taken"}}, http.StatusUnprocessableEntity, "Enter your password."},
		{"register too short", "/register", ta, nil, url.Values{"username": {"x"}, "password": {"long-enough-password"}}, http.StatusUnprocessableEntity, "username-error"},
		{"register taken", "/register", ta, nil, url.Values{"username": {"taken"}, "password": {"long-enough-password"}}, http.StatusConflict, "That username is taken"},
		{"lab: a read that does not match the cookie", "/lab/read", ta, withSession, url.Values{"read": {"someone-else"}}, http.StatusUnprocessableEntity, "Not what this session"},
		{"lab: a read before there is a session", "/lab/read", ta, nil, url.Values{"read": {""}}, http.StatusConflict, "No session yet"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			browser := c.ta.client
			if c.client != nil {
				browser = c.client
			}
			page := c.ta.post(browser(), c.path, c.form)
			if page.status != c.status || page.header.Get(FormStatusHeader) != "" {
				t.Errorf("page load: %d with %s %q, want %d and no such header", page.status, FormStatusHeader, page.header.Get(FormStatusHeader), c.status)
			}
			frag := c.ta.post(browser(), c.path, c.form, "HX-Request", "true")
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

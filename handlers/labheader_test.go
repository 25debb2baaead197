package handlers

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/views"
)

var (
	headerProgress = regexp.MustCompile(`data-testid="lab-progress">(\d) of 7 done<`)
	labSummary     = regexp.MustCompile(`data-testid="lab-summary"><strong>(\d) of 7 done<`)
)

// progressIn is the header's "N of 7 done" in a page or fragment ("" for none).
func progressIn(body string) string {
	if m := headerProgress.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}

// labSays is what /lab's summary says for c on ta.
func (ta *testApp) labSays(c *http.Client) string {
	ta.t.Helper()
	m := labSummary.FindStringSubmatch(ta.get(c, "/lab").body)
	if m == nil {
		ta.t.Fatal("no lab summary on /lab")
	}
	return m[1]
}

// withCookie is a client of ta holding token, as the same browser on
// another process or instance would.
func (ta *testApp) withCookie(token string) *http.Client {
	ta.t.Helper()
	c := ta.client()
	u, _ := url.Parse(ta.srv.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: ta.app.Sessions.Cookie.Name, Value: token}})
	return c
}

// A step ticked by an action shows in the header of the page that answers
// the action, as /lab says it right after: the count that lands on a new
// process (restart) or instance (servers), as a whole page and as the
// counter's htmx answer, and /lab itself the first time it sees two
// browsers, as a whole page, as an htmx page and as its live update.
func TestHeaderProgressSaysWhatTheLabSays(t *testing.T) {
	htmxCount := []string{"HX-Request", "true", "HX-Target", views.IDViewCount}
	for _, tc := range []struct {
		name     string
		instance string // of the second process ("test" as the first: a restart)
		headers  []string
	}{
		{"a count after a restart, whole page", "test", nil},
		{"a count after a restart, the counter's answer", "test", htmxCount},
		{"a count on another instance, whole page", "b", nil},
		{"a count on another instance, the counter's answer", "b", htmxCount},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := redistest.Start(t)
			before := newTestAppOn(t, rs)
			c := before.client()
			before.anonymousSession(c)
			before.get(c, "/count") // store and count: 2 of 7
			after := newTestAppWith(t, rs, func(cfg *Config) { cfg.Instance = tc.instance },
				func(a *App) { a.ProcessID = "d4e5f6" })
			c2 := after.withCookie(before.token(c))

			r := after.get(c2, "/count", tc.headers...)
			header, lab := progressIn(r.body), after.labSays(c2)
			if lab != "3" {
				t.Fatalf("/lab says %s of 7 after the count on the new process, want 3", lab)
			}
			if header != lab {
				t.Errorf("the count's answer says %q of 7 in the header, /lab says %s", header, lab)
			}
		})
	}
	t.Run("the second view, the counter's answer", func(t *testing.T) {
		ta := newTestApp(t)
		c := ta.client()
		ta.anonymousSession(c)
		r := ta.get(c, "/count", htmxCount...)
		if header, lab := progressIn(r.body), ta.labSays(c); lab != "2" || header != lab {
			t.Errorf("the count's answer says %q of 7 in the header, /lab says %s (want 2)", header, lab)
		}
	})
	for _, tc := range []struct {
		name, path string
		headers    []string
	}{
		{"/lab seeing two browsers, whole page", "/lab", nil},
		{"/lab seeing two browsers, htmx page", "/lab", []string{"HX-Request", "true"}},
		{"/lab seeing two browsers, its live update", "/lab/steps", []string{"HX-Request", "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ta := newTestApp(t)
			one, two := ta.client(), ta.client()
			ta.anonymousSession(one)
			ta.get(one, "/count")
			ta.anonymousSession(two)
			r := ta.get(one, tc.path, tc.headers...)
			header, lab := progressIn(r.body), labSummary.FindStringSubmatch(r.body)
			if lab == nil || lab[1] != "3" {
				t.Fatalf("/lab does not say 3 of 7 with two browsers counted: %v", lab)
			}
			if header != lab[1] {
				t.Errorf("/lab's header says %q of 7, its summary %s", header, lab[1])
			}
		})
	}
}

// Another tab's count reloads the Redis panel of a count page (its panel
// hook); that answer brings the header's progress too, so a tab that did
// not count says what /lab says after a count in another tab ticked a step.
func TestThePanelReloadBringsTheHeadersProgress(t *testing.T) {
	ta := newTestApp(t)
	c := ta.client()
	ta.anonymousSession(c)
	ta.get(c, "/count") // in the other tab: the count step ticks
	r := ta.get(c, "/redis", "HX-Request", "true", "HX-Target", views.IDRedisPanel, "HX-Trigger", "panel-hook")
	if header, lab := progressIn(r.body), ta.labSays(c); header != lab || lab != "2" {
		t.Errorf("the panel's reload says %q of 7 for the header, /lab says %s (want 2)", header, lab)
	}
}

package handlers

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/redistest"
	"github.com/sessionlab/sessionlab/internal/sessionstack"
)

// labStep is a step's <li> on /lab, "" when absent.
func labStep(body, step string) string {
	for _, part := range strings.Split(body, `<li data-testid="lab-step"`)[1:] {
		if strings.HasPrefix(part, ` data-step="`+step+`"`) {
			return part
		}
	}
	return ""
}

// In memory mode the store and servers steps cannot tick and say what to
// run, and after a restart the restart step shows the count was lost.
func TestLabInMemoryModeShowsTheLoss(t *testing.T) {
	rs := redistest.Start(t)
	before := wireTestApp(t, rs, testConfig(rs, sessionstack.Memory)).serve()
	c := before.client()
	token := before.anonymousSession(c)
	if r := before.get(c, "/count"); r.status != http.StatusOK {
		t.Fatalf("GET /count: %d", r.status)
	}
	r := before.get(c, "/lab")
	if r.status != http.StatusOK {
		t.Fatalf("GET /lab: %d", r.status)
	}
	for step, want := range map[string]string{
		"store":   `data-done="false"`,
		"count":   `data-done="true"`,
		"servers": `data-done="false"`,
		"restart": `data-done="false"`,
	} {
		if s := labStep(r.body, step); !strings.Contains(s, want) {
			t.Errorf("memory mode, step %s: want %s in\n%s", step, want, s)
		}
	}
	for _, step := range []string{"store", "servers"} {
		if s := labStep(r.body, step); !strings.Contains(s, `data-testid="lab-blocked"`) || !strings.Contains(s, "-store memory") {
			t.Errorf("memory mode, step %s does not say what to run:\n%s", step, s)
		}
	}

	// A restart: a new process with its own memory, on the same address.
	after := wireTestApp(t, rs, testConfig(rs, sessionstack.Memory)).serve()
	u, _ := url.Parse(after.srv.URL)
	c2 := after.client()
	c2.Jar.SetCookies(u, []*http.Cookie{{Name: after.app.Sessions.Cookie.Name, Value: token}})
	r = after.get(c2, "/lab")
	s := labStep(r.body, "restart")
	if !strings.Contains(s, `data-testid="lab-lost"`) || !strings.Contains(s, "lost with the process") || !strings.Contains(s, `data-done="false"`) {
		t.Errorf("after a restart in memory mode the restart step does not show the loss:\n%s", s)
	}
}

// The header's "N of 7 done" is on every page, counted from the session as
// loaded: a page other than /lab sends no extra Redis command for it.
func TestLabProgressInTheHeader(t *testing.T) {
	ta := newTestApp(t).serve()
	c := ta.client()
	ta.anonymousSession(c)
	ta.get(c, "/count")
	r := ta.get(c, "/count")
	if !strings.Contains(r.body, `data-testid="lab-progress">2 of 7 done<`) {
		i := strings.Index(r.body, `lab-progress`)
		t.Errorf("after three views the header does not say 2 of 7 done: %s", r.body[i:min(len(r.body), i+200)])
	}
	if n := strings.Count(r.body, `data-testid="trace-command"`); n != 2 {
		i := strings.Index(r.body, `redis-trace-list`)
		t.Errorf("GET /count sent %d Redis commands, want its two (GET, the count script): %s", n, r.body[i:min(len(r.body), i+1500)])
	}
}

package oneredis

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// -redis-managed runs against a Redis that forbids what managed providers
// often do: the documented ACL user without CLIENT TRACKING/CACHING, ROLE,
// CONFIG and INFO. Every feature works, revocation included (the credential
// check then reads the account each time), and Redis refuses nothing, from
// the start on.
func TestManagedModeNeedsNoTrackingRoleConfigOrInfo(t *testing.T) {
	const password = "managed-test-password"
	rule := strings.Replace(aclRule(t), ">change-this-password", ">"+password, 1)
	for _, cmd := range []string{"+client|tracking", "+client|caching", "+role", "+info"} {
		if !strings.Contains(rule, " "+cmd) {
			t.Fatalf("the documented user has no %s any more: update this test", cmd)
		}
		rule = strings.Replace(rule, " "+cmd, "", 1)
	}
	rs := redistest.Start(t, append([]string{"--user"}, strings.Fields(strings.TrimPrefix(rule, "user "))...)...)
	u := "redis://sessionlab:" + password + "@" + rs.Addr() + "/0"
	a := apptest.Start(t, bin, "-redis", u, "-redis-managed", "-instance", "a")
	b := apptest.Start(t, bin, "-redis", u, "-redis-managed", "-instance", "b")

	laptop, phone := apptest.Client(t), apptest.Client(t)
	creds := url.Values{"username": {"managed"}, "password": {"managed-password"}}
	if s := apptest.PostForm(t, laptop, a.URL+"/register", creds); s != http.StatusSeeOther {
		t.Fatalf("register: %d", s)
	}
	if st := apptest.OpenStream(t, laptop, a.URL+"/live"); st.Status != http.StatusOK {
		t.Errorf("live stream: %d", st.Status)
	}
	for _, p := range []*apptest.Process{a, b} {
		if s, body := apptest.Get(t, laptop, p.URL+"/count"); s != http.StatusOK {
			t.Errorf("count on %s: %d %s", p.Addr, s, body)
		}
		if s, body := apptest.Get(t, laptop, p.URL+"/readyz"); s != http.StatusOK {
			t.Errorf("readyz on %s: %d %s", p.Addr, s, body)
		}
	}
	if s := apptest.PostForm(t, phone, b.URL+"/login", creds); s != http.StatusSeeOther {
		t.Fatalf("login on b: %d", s)
	}
	if s := apptest.PostForm(t, laptop, a.URL+"/password", url.Values{"current": {"managed-password"}, "new": {"managed-new-password"}}); s != http.StatusSeeOther {
		t.Fatalf("password change: %d", s)
	}
	if s, _ := apptest.Get(t, phone, b.URL+"/profile"); s != http.StatusUnauthorized {
		t.Errorf("the other session after a password change: %d, want 401 (logged out)", s)
	}
	if refused := aclDenials(rs.MustDo("ACL", "LOG")); len(refused) > 0 {
		t.Errorf("in managed mode Redis refused the app %s", strings.Join(refused, ", "))
	}
}

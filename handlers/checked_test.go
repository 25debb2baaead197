package handlers

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/sessionlab/sessionlab/internal/sessions"
)

// Pages read the session as loadAndSave checked it while the request has not
// changed it (asChecked), and from scs once it has: the header, the lab
// progress and the profile's deadlines are what scs's own reads give.
func TestPagesReadTheSessionAsItIsNow(t *testing.T) {
	ta := newTestApp(t)

	plainPage := func(r *http.Request) (user string, lab int) {
		ctx := r.Context()
		if u, ok := ta.app.currentUser(ctx); ok {
			user = u.Username
		}
		return user, ta.app.labProgress(ctx, ta.app.labOf(ctx)).Done
	}
	for i, tc := range []struct {
		name     string
		change   func(r *http.Request)
		wantUser string
	}{
		{"unchanged", func(*http.Request) {}, "reader"},
		{"user removed", func(r *http.Request) { ta.app.Sessions.Remove(r.Context(), sessions.KeyUser) }, ""},
		{"another user put", func(r *http.Request) {
			ta.app.Sessions.Put(r.Context(), sessions.KeyUser, sessions.User{Username: "other"})
		}, "other"},
		{"destroyed", func(r *http.Request) {
			if err := ta.app.Sessions.Destroy(r.Context()); err != nil {
				t.Error(err)
			}
		}, ""},
		{"token renewed", func(r *http.Request) {
			if err := ta.app.Sessions.RenewToken(r.Context()); err != nil {
				t.Error(err)
			}
		}, "reader"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ta.client()
			ta.register(c, "reader"+strconv.Itoa(i), "reader-password")
			if tc.wantUser == "reader" {
				tc.wantUser += strconv.Itoa(i)
			}
			ran := false
			h := ta.app.loadAndSave(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ran = true
				ctx := r.Context()
				if _, ok := ta.app.asChecked(ctx); !ok {
					t.Error("a checked, logged-in session is not asChecked before any change")
				}
				tc.change(r)
				p := ta.app.page(ctx, "t")
				user, lab := plainPage(r)
				if p.User != tc.wantUser || p.User != user {
					t.Errorf("page's user %q, scs says %q, want %q", p.User, user, tc.wantUser)
				}
				if p.Lab.Done != lab {
					t.Errorf("page's lab progress %d, scs's reads %d", p.Lab.Done, lab)
				}
				if tc.wantUser == "" {
					return
				}
				v := ta.app.profileView(ctx, sessions.User{Username: tc.wantUser})
				if want := ta.app.Sessions.Deadline(ctx); !v.AbsDeadline.Equal(want) {
					t.Errorf("profile's deadline %v, scs says %v", v.AbsDeadline, want)
				}
			}))
			req := httptest.NewRequest(http.MethodGet, ta.srv.URL+"/t", nil)
			req.AddCookie(&http.Cookie{Name: ta.app.Sessions.Cookie.Name, Value: ta.token(c)})
			h.ServeHTTP(httptest.NewRecorder(), req)
			if !ran {
				t.Fatal("the session did not load")
			}
		})
	}
}

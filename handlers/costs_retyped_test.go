package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/sessionlab/sessionlab/internal/accounts"
)

// accounts:costs counts the stored password hashes by bcrypt cost, so that
// every login takes as long (cost.go). It is derived from the accounts: a
// hand edit that makes it unreadable (another type, a count that is no
// number) is counted again, where every login, sign-up and password change
// of every user answered 500 until someone deleted the key by hand, and a
// sign-up's 500 said nothing was changed while it had made the account.
func TestCostCountsEditedByHandAreCountedAgain(t *testing.T) {
	ta := newTestApp(t)
	cost := strconv.Itoa(bcrypt.MinCost) // the tests' bcrypt cost
	for i, edit := range [][]string{
		{"SET", accounts.CostsKey, "garbage"},
		{"HSET", accounts.CostsKey, cost, "abc"},
		{"SADD", accounts.CostsKey, "4"},
	} {
		t.Run(strings.Join(edit, " "), func(t *testing.T) {
			name := "cost" + strconv.Itoa(i)
			ta.redis.MustDo("DEL", accounts.CostsKey) // the last case's edit
			c := ta.client()
			ta.register(c, name, name+"-password")
			ta.post(c, "/logout", nil)
			ta.redis.MustDo("DEL", accounts.CostsKey)
			ta.redis.MustDo(edit...)

			if r := ta.post(c, "/login", url.Values{"username": {name}, "password": {"wrong-password"}}); r.status != http.StatusUnauthorized {
				t.Errorf("a wrong password: %d, want 401", r.status)
			}
			if r := ta.post(c, "/login", url.Values{"username": {name}, "password": {name + "-password"}}); r.status != http.StatusSeeOther {
				t.Fatalf("a right password: %d, want 303", r.status)
			}
			if r := ta.post(c, "/password", url.Values{"current": {name + "-password"}, "new": {name + "-new-password"}}); r.status != http.StatusSeeOther {
				t.Errorf("a password change: %d, want 303", r.status)
			}
			ta.redis.MustDo("DEL", accounts.CostsKey)
			ta.redis.MustDo(edit...)
			newcomer := ta.client()
			if r := ta.post(newcomer, "/register", url.Values{"username": {name + "b"}, "password": {name + "-password"}}); r.status != http.StatusSeeOther {
				t.Fatalf("a sign-up: %d, want 303", r.status)
			}
			// The sign-up deleted the counts; the next login counts them again,
			// whole: every account here has a hash of the tests' cost.
			if r := ta.post(newcomer, "/login", url.Values{"username": {name}, "password": {"wrong-password"}}); r.status != http.StatusUnauthorized {
				t.Errorf("a wrong password after the sign-up: %d, want 401", r.status)
			}
			users := 0
			for _, k := range strings.Fields(ta.redis.MustDo("KEYS", "user:*")) {
				if ta.redis.MustDo("TYPE", k) == "string" {
					users++
				}
			}
			if got := ta.redis.MustDo("HGET", accounts.CostsKey, cost); got != strconv.Itoa(users) {
				t.Errorf("%s %s = %q after the edit, want %d (one per account)", accounts.CostsKey, cost, got, users)
			}
			if !strings.Contains(ta.logs.String(), "counted again") {
				t.Error("no log line says the counts were counted again")
			}
		})
	}
}

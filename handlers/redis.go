package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"github.com/sessionlab/sessionlab/internal/accounts"
	"github.com/sessionlab/sessionlab/internal/inspect"
	"github.com/sessionlab/sessionlab/internal/redisconn"
	"github.com/sessionlab/sessionlab/internal/requestlog"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/views"
)

// redisPage handles GET /redis: this browser's keys as stored. The panel at
// the bottom of every page loads the same data with htmx.
func (a *App) redisPage(w http.ResponseWriter, r *http.Request) {
	v, err := a.redisView(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if isPanelRequest(r) {
		// With the header's progress: a count page reloads its panel after
		// each count of any tab (its panel hook), which may tick a step.
		ctx := r.Context()
		l := a.labOf(ctx)
		a.twoBrowsersNow(r, l)
		a.write(w, r, http.StatusOK, templ.Join(views.RedisPanelOwn(v),
			views.LabProgressLink(a.labProgress(ctx, l), true)))
		return
	}
	p := a.page(r.Context(), "What's in Redis")
	p.HidePanel = true
	if isHTMX(r) {
		a.write(w, r, http.StatusOK, views.Fragment(p, views.RedisPage(v)))
		return
	}
	a.write(w, r, http.StatusOK, layout(r.Context(), p, views.RedisPage(v)))
}

// twoBrowsersNow reads this computer's browsers list for the header's
// progress when the session has not recorded "Two browsers" yet: /lab would
// tick it from the list now, and the count page that loaded this panel said
// so (st.twoBrowsers); the panel's progress must not take it back. Only then,
// and never on the counted routes: one script call of the panel's own.
func (a *App) twoBrowsersNow(r *http.Request, l sessions.Lab) {
	ctx := r.Context()
	st, ok := stateOf(ctx)
	token := a.Sessions.Token(ctx)
	if !ok || token == "" || l.Browsers != nil {
		return
	}
	list, err := a.Ops.Browsers(ctx, a.computer(r))
	if err != nil {
		return // the progress as recorded: behind /lab at worst, never ahead
	}
	list.Self = sessions.ID(token)
	st.twoBrowsers = listsAnother(list)
}

// isPanelRequest: the panel at the foot of a page asks for its content, in
// a request of its own that MONITOR shows among the page's.
func isPanelRequest(r *http.Request) bool {
	return isHTMX(r) && r.URL.Path == "/redis" && r.Header.Get("HX-Target") == views.IDRedisPanel
}

// redisView is this browser's keys as stored now, and when they were read.
func (a *App) redisView(ctx context.Context) (views.RedisView, error) {
	entries, err := a.redisEntries(ctx)
	v := views.RedisView{Entries: entries, Memory: a.InProcess, Server: a.Redis(), At: time.Now()}
	// Nothing was read (no moment to name) without a login and without a
	// session key to look at: memory mode, or a browser with no session.
	st, _ := stateOf(ctx)
	noKey := a.InProcess || a.Sessions.Token(ctx) == "" && !st.isUnreadable()
	if _, ok := a.currentUser(ctx); noKey && !ok {
		v.At = time.Time{}
	}
	return v, err
}

func (a *App) redisEntries(ctx context.Context) ([]views.RedisEntry, error) {
	var entries []views.RedisEntry
	// With -store memory, asking Redis would trace commands about no key.
	token, note := a.Sessions.Token(ctx), "this browser's session (the key holds the full token; it is cut here on purpose)"
	if st, _ := stateOf(ctx); token == "" && st.isUnreadable() {
		token, note = st.presented, "the key this browser's session cookie names: not a session this app can read, left as it is"
	}
	if token != "" && !a.InProcess {
		e, err := a.Inspector.Key(ctx, sessions.Key(token))
		if err != nil {
			return nil, fmt.Errorf("session %s: %w", a.LogID(token), err)
		}
		if e.Exists {
			entries = append(entries, views.RedisEntry{
				Key:    sessions.CutSessionKey(token),
				Note:   note,
				TTL:    e.TTL,
				Memory: e.Memory,
				Value:  shownValue(e, "string", inspect.Pretty),
			})
		}
		if ce, ok, err := a.countedPanelEntry(ctx, token); err != nil {
			return nil, err
		} else if ok {
			entries = append(entries, ce)
		}
	}
	if u, ok := a.currentUser(ctx); ok {
		e, err := a.Inspector.Key(ctx, accounts.Key(u.Username))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", accounts.Key(u.Username), err)
		}
		if e.Exists {
			entries = append(entries, views.RedisEntry{
				Key:    accounts.Key(u.Username),
				Note:   "your account; the password is kept only as a bcrypt hash (cut here)",
				TTL:    e.TTL,
				Memory: e.Memory,
				Value:  shownValue(e, "string", func(v []byte) string { return inspect.Pretty(cutHash(v)) }),
			})
		}
		ie, ok, err := a.indexPanelEntry(ctx, u.Username)
		if err != nil {
			return nil, err
		}
		if ok {
			entries = append(entries, ie)
		}
	}
	return entries, nil
}

// countedPanelEntry is the session's CountedKey, which only a count through
// a proxy that sends request ids writes: a page not served through one does
// not ask for it.
func (a *App) countedPanelEntry(ctx context.Context, token string) (views.RedisEntry, bool, error) {
	if info := requestlog.From(ctx); info == nil || !info.Proxied || token != a.Sessions.Token(ctx) {
		return views.RedisEntry{}, false, nil
	}
	key := sessions.CountedKey(token)
	e, err := a.Inspector.Key(ctx, key)
	if err != nil {
		return views.RedisEntry{}, false, fmt.Errorf("%s: %w", key, err)
	}
	if !e.Exists {
		return views.RedisEntry{}, false, nil
	}
	return views.RedisEntry{
		Key: key,
		Note: "this session's last count through the proxy: its request id and the count it made. If the proxy sends " +
			"that request again to another server (the first one died before answering), it gets this count, and nothing is counted twice",
		TTL:    e.TTL,
		Memory: e.Memory,
		Value:  shownValue(e, "string", func(v []byte) string { return string(v) }),
	}, true, nil
}

// shownValue is a key's value as the panel shows it (show: how), or, for a
// key holding another type of value than the app writes there (want),
// what TYPE says, where the page failed.
func shownValue(e inspect.Entry, want string, show func([]byte) string) string {
	if e.OtherType != "" {
		return "(TYPE: " + e.OtherType + ", not the " + want + " this app writes here; changed by hand with redis-cli? " +
			"Not shown here: read it with redis-cli.)"
	}
	return show(e.Value)
}

// cutHash shortens the bcrypt hash in an account value to its algorithm and
// cost: enough to see it is a hash, nothing to crack.
func cutHash(v []byte) []byte {
	var m map[string]any
	if json.Unmarshal(v, &m) != nil {
		return v
	}
	if h, ok := m["hash"].(string); ok && len(h) > 7 {
		m["hash"] = h[:7] + "…"
	}
	b, err := json.Marshal(m)
	if err != nil {
		return v
	}
	return b
}

// DescribeRedis names the Redis the app uses, for the Redis panel, with a
// redis-cli command line that reaches it as the app does, never the password
// (--askpass). With Sentinel it describes the current master on each call.
func DescribeRedis(cfg redisconn.Config, master func() string) (func() views.RedisServer, error) {
	opt, err := redisconn.ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	db := strconv.Itoa(opt.SelectDB)
	user := ""
	if opt.Username != "" {
		user += " --user " + opt.Username
	}
	if opt.Password != "" {
		user += " --askpass"
	}
	if path, ok := strings.CutPrefix(cfg.URL, "unix://"); ok {
		path, _, _ = strings.Cut(path, "?")
		s := views.RedisServer{Where: path + ", database " + db, CLI: "redis-cli -s " + path + " -n " + db + user}
		return func() views.RedisServer { return s }, nil
	}
	scheme, tls := "redis", ""
	if opt.TLSConfig != nil {
		scheme, tls = "rediss", " --tls"
		for _, f := range []struct{ flag, file string }{{"--cacert", cfg.CA}, {"--cert", cfg.Cert}, {"--key", cfg.Key}} {
			if f.file != "" {
				tls += " " + f.flag + " " + f.file
			}
		}
	}
	describe := func(addr, note string) views.RedisServer {
		return views.RedisServer{Where: addr + note + ", database " + db,
			CLI: "redis-cli" + tls + " -u " + scheme + "://" + addr + "/" + db + user}
	}
	if opt.Sentinel.MasterSet == "" {
		s := describe(opt.InitAddress[0], "")
		return func() views.RedisServer { return s }, nil
	}
	note := " (the master of " + opt.Sentinel.MasterSet + ", as Sentinel names it now)"
	return func() views.RedisServer { return describe(master(), note) }, nil
}

// indexPanelEntry is the user's session index for the "What's in Redis"
// panel, with every token cut short as the session key is.
func (a *App) indexPanelEntry(ctx context.Context, user string) (views.RedisEntry, bool, error) {
	key, ok := a.Index.Key(user)
	if !ok {
		return views.RedisEntry{}, false, nil
	}
	e, err := a.Inspector.Hash(ctx, key)
	if err != nil {
		return views.RedisEntry{}, false, fmt.Errorf("%s: %w", key, err)
	}
	if !e.Exists {
		return views.RedisEntry{}, false, nil
	}
	if e.OtherType != "" {
		return views.RedisEntry{Key: e.Key, Note: "your sessions on every server: the app writes a hash here",
			TTL: e.TTL, Memory: e.Memory, Value: shownValue(e, "hash", nil)}, true, nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(e.Value, &raw); err != nil {
		return views.RedisEntry{}, false, nil
	}
	fields := make(map[string]any, len(raw))
	var times []string
	for _, id := range slices.Sorted(maps.Keys(raw)) {
		var f map[string]any
		if err := json.Unmarshal(raw[id], &f); err != nil || f == nil {
			// A field edited by hand: listed, its value not shown (it
			// could hold a token, which the page never shows whole).
			fields[id] = fmt.Sprintf("(not an entry the app wrote: %d bytes, not shown)", len(raw[id]))
			continue
		}
		if tok, ok := f["token"].(string); ok && len(tok) > 6 {
			f["token"] = tok[:6] + "…"
		}
		fields[id] = f
		times = append(times, epochTimes(id, f, "created", "last_seen"))
	}
	cut, err := json.Marshal(fields)
	if err != nil {
		return views.RedisEntry{}, false, nil
	}
	return views.RedisEntry{
		Key:    e.Key,
		Note:   "your sessions on every server (a hash: field = session id, a hash of the token; tokens cut here)",
		TTL:    e.TTL,
		Memory: e.Memory,
		Value:  inspect.Pretty(cut),
		Times:  times,
	}, true, nil
}

// epochTimes writes a field's epoch-millisecond times out readably:
// "3f2a…: created 1764590465123 = 2026-12-01 12:01:05 UTC, …".
func epochTimes(id string, f map[string]any, names ...string) string {
	var parts []string
	for _, name := range names {
		if ms, ok := f[name].(float64); ok {
			t := time.UnixMilli(int64(ms)).UTC()
			parts = append(parts, fmt.Sprintf("%s %d = %s", name, int64(ms), t.Format("2006-01-02 15:04:05 UTC")))
		}
	}
	return truncate(id, 8) + "…: " + strings.Join(parts, ", ")
}

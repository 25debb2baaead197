package handlers

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sessionlab/sessionlab/internal/instances"
	"github.com/sessionlab/sessionlab/internal/sessions"
	"github.com/sessionlab/sessionlab/internal/useragent"
	"github.com/sessionlab/sessionlab/views"
)

// The lab: GET /lab ticks the tutorial's steps from evidence in the session;
// with -lab its experiments weaken this session alone (docs/security.md).

// labOf is the lab record of the request's session (zero without one),
// with what this request noted in the store (labNoted).
func (a *App) labOf(ctx context.Context) sessions.Lab {
	st, ok := stateOf(ctx)
	if !ok {
		return sessions.Lab{}
	}
	l, _ := a.Sessions.Get(ctx, sessions.KeyLab).(sessions.Lab)
	if st.lab != nil {
		l = *st.lab
	}
	if !a.Lab {
		// Switches exist only with -lab: a session flipped under an
		// earlier -lab process is not weakened by this one.
		l.NoHTTPOnly, l.NoRenewal = false, false
	}
	return l
}

// labProgress counts the steps done from the session as loaded: no Redis
// command, so the header can show it on every page. l is labOf(ctx), which
// page needs too.
func (a *App) labProgress(ctx context.Context, l sessions.Lab) views.LabProgress {
	_, ok := stateOf(ctx)
	return a.labProgressOf(ctx, l, ok && a.Sessions.Token(ctx) != "")
}

// labProgressOf is labProgress for a caller that knows whether the request
// has a session with a token.
func (a *App) labProgressOf(ctx context.Context, l sessions.Lab, hasToken bool) views.LabProgress {
	if !hasToken {
		return views.LabProgress{}
	}
	count := a.Sessions.GetInt(ctx, sessions.KeyViews)
	twoBrowsers := false
	if st, ok := stateOf(ctx); ok {
		count, twoBrowsers = max(count, st.views), st.twoBrowsers
	}
	n := 0
	for _, done := range []bool{!a.InProcess, count >= 2, l.Browsers != nil || twoBrowsers,
		l.Restart != nil && !a.InProcess, l.Servers != nil && !a.InProcess, l.HTTPOnly.Both(), l.Fixation.Both()} {
		if done {
			n++
		}
	}
	return views.LabProgress{Done: n}
}

// labPage handles GET /lab.
func (a *App) labPage(w http.ResponseWriter, r *http.Request) {
	v, err := a.labView(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "Lab", views.LabPage(v))
}

// labSteps handles GET /lab/steps: the steps and the path again, for the
// page's live updates.
func (a *App) labSteps(w http.ResponseWriter, r *http.Request) {
	v, err := a.labView(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.write(w, r, http.StatusOK, views.LabLive(v, true))
}

// labView reads the evidence and builds the page; a step first seen done is
// recorded in the session, so its tick outlives the evidence.
func (a *App) labView(w http.ResponseWriter, r *http.Request) (views.Lab, error) {
	ctx := r.Context()
	token := a.Sessions.Token(ctx)
	st, _ := stateOf(ctx)
	l := a.labOf(ctx)
	viewsN := a.Sessions.GetInt(ctx, sessions.KeyViews)
	origin, _ := a.Sessions.Get(ctx, sessions.KeyOrigin).(sessions.Origin)
	_, loggedIn := a.currentUser(ctx)
	visit := a.visit(r, loggedIn)

	// HEAD changes nothing: no cookie, no evidence recorded.
	record := r.Method != http.MethodHead
	var browser string
	if a.Lab && record {
		browser = a.labBrowser(w, r)
		if err := a.noteLabBrowser(ctx, token, browser, &l, loggedIn); err != nil {
			return views.Lab{}, err
		}
	}

	// The key as held now, the instances and the browsers list, read one
	// after another: the page's trace lists its commands in the order
	// MONITOR prints them, which reads sent at once would not keep.
	var keyNow struct {
		key    string
		ttl    time.Duration
		stored bool
	}
	if token != "" {
		keyNow.key = sessions.CutSessionKey(token)
		if !a.InProcess {
			e, err := a.Inspector.Key(ctx, sessions.Key(token))
			if err != nil {
				return views.Lab{}, err
			}
			keyNow.stored, keyNow.ttl = e.Exists, e.TTL
		} else if t, err := a.Ops.Times(ctx, token); err == nil {
			keyNow.stored, keyNow.ttl = true, time.Until(t.End(a.Idle))
		}
	}
	// The instances on this Redis, for the servers step (memory mode:
	// none shares this process's sessions).
	var live []instances.Instance
	if !a.InProcess {
		var err error
		if live, err = a.Instances.Live(ctx); err != nil {
			return views.Lab{}, err
		}
	}
	browsers, err := a.Ops.Browsers(ctx, visit.Addr)
	if err != nil {
		return views.Lab{}, err
	}
	list := browsers.Rows
	id := ""
	if token != "" {
		id = sessions.ID(token)
	}
	var this, other *sessions.Browser
	for i := range list {
		if list[i].ID == id {
			this = &list[i]
		} else if other == nil {
			other = &list[i]
		}
	}
	if record && l.Browsers == nil && this != nil && other != nil {
		ev := &sessions.LabBrowsers{At: time.Now().UnixMilli(), This: browserLine(*this), Other: browserLine(*other)}
		if err := a.Ops.LabNote(ctx, token, "browsers", ev, false); err != nil && !errors.Is(err, sessions.ErrNoSession) {
			return views.Lab{}, err
		}
		l.Browsers = ev
	}

	key, ttl, stored := keyNow.key, keyNow.ttl, keyNow.stored
	labNoted(ctx, l)

	steps := []views.LabStep{
		a.storeStep(stored, key, ttl, origin),
		countStep(viewsN, key, this),
		browsersStep(l.Browsers, visit.Addr),
		a.restartStep(l.Restart, origin, st != nil && st.lost),
		a.serversStep(l.Servers, origin, live),
		a.httpOnlyStep(l),
		a.fixationStep(l),
	}
	v := views.Lab{Steps: steps, Switches: a.Lab, NoHTTPOnly: l.NoHTTPOnly, NoRenewal: l.NoRenewal,
		HasSession: token != "", LoggedIn: loggedIn, CookieName: a.Sessions.Cookie.Name,
		Secure: a.Sessions.Cookie.Secure, Host: r.Host, Localhost: isLocalhost(r.Host)}
	for _, s := range steps {
		if s.Done {
			v.Progress.Done++
		}
	}
	v.SetCookie = a.setCookieLine(token, l.NoHTTPOnly)
	v.Holders = a.labHolders(cmp.Or(browser, labBrowserID(r)), l)
	// A cookie of a session that ended names this browser's row until the
	// row goes (forgetEnded, or the next count): not another browser's.
	own := id
	if own == "" && st.isStale() && st.presented != "" {
		own = sessions.ID(st.presented)
	}
	v.Path = a.labPath(r, token, key, ttl, l.NoHTTPOnly, list, own, live)
	v.News = labNews(list, own)
	return v, nil
}

// labOthers are the lines /lab shows of an address's other browsers (the
// first is the browsers step's "another browser").
func labOthers(list []sessions.Browser, id string) []string {
	var lines []string
	for _, b := range list {
		if b.ID != id && len(lines) < maxPathRows {
			lines = append(lines, browserLine(b))
		}
	}
	return lines
}

// labNews is what /lab shows of an address's list, for session id, as a
// short digest (views.Lab.News): its own row's changes come as counts, and
// who has a page open it does not show.
func labNews(list []sessions.Browser, id string) string {
	h := fnv.New64a()
	for _, line := range labOthers(list, id) {
		h.Write([]byte(line))
		h.Write([]byte{'\n'})
	}
	return strconv.FormatUint(h.Sum64(), 16)
}

func browserLine(b sessions.Browser) string {
	if b.Views == 1 {
		return b.Device + ": 1 view"
	}
	return fmt.Sprintf("%s: %d views", b.Device, b.Views)
}

func (a *App) storeStep(stored bool, key string, ttl time.Duration, o sessions.Origin) views.LabStep {
	s := views.LabStep{Name: views.StepStore, Title: "Set up the Redis session store",
		Do: "Count a view or log in: the app stores your session in Redis as a sess: key."}
	if a.InProcess {
		s.Blocked = "Sessions live in this process (-store memory), so none is in Redis: run go tool task run without -store memory."
		return s
	}
	if !stored {
		return s
	}
	s.Done = true
	s.Evidence = append(s.Evidence, fmt.Sprintf("%s is in Redis now, expiring in %s.", key, roundDur(ttl)))
	if o.Process != "" {
		s.Evidence = append(s.Evidence, fmt.Sprintf("Created %s by process %s (instance %s).", o.At.UTC().Format(time.TimeOnly), o.Process, o.Instance))
	}
	return s
}

func countStep(n int, key string, this *sessions.Browser) views.LabStep {
	s := views.LabStep{Name: views.StepCount, Title: "A route that counts",
		Do: "Open Count and count at least two views."}
	if n < 2 {
		return s
	}
	s.Done = true
	s.Evidence = append(s.Evidence, fmt.Sprintf("views = %d in %s.", n, key))
	if this != nil {
		s.Evidence = append(s.Evidence, fmt.Sprintf("Last counted at %s.", this.CountedAt().Format(time.TimeOnly)))
	}
	return s
}

func browsersStep(ev *sessions.LabBrowsers, addr string) views.LabStep {
	s := views.LabStep{Name: views.StepBrowsers, Title: "Two browsers",
		Do: "Count in a second browser (or a private window) too, and again here: each keeps its own count."}
	if ev == nil {
		return s
	}
	s.Done = true
	s.Evidence = []string{
		fmt.Sprintf("This browser, %s.", ev.This),
		fmt.Sprintf("Another browser of %s, %s.", addr, ev.Other),
		fmt.Sprintf("Seen side by side at %s (browsers:%s in Redis).", sessions.LabTime(ev.At).Format(time.TimeOnly), addr),
	}
	return s
}

func (a *App) restartStep(ev *sessions.LabMove, o sessions.Origin, lost bool) views.LabStep {
	s := views.LabStep{Name: views.StepRestart, Title: "Restart the server",
		Do: "Restart the server (Ctrl-C and go tool task run again), then count again: the count goes on."}
	if a.Restart != nil {
		s.Do = "Restart the server (\"Restart this server\" at the bottom), then count again: the count goes on."
	}
	if a.InProcess {
		if lost {
			s.Lost = "Your count was lost with the process: the session lived in its memory. This is why the tutorial uses Redis."
		} else {
			s.Blocked = "With -store memory a restart loses the session: restart, then reload this page to see the loss. Run without -store memory to keep it."
		}
		return s
	}
	if ev == nil {
		return s
	}
	s.Done = true
	s.Evidence = []string{
		fmt.Sprintf("Counted at %s by process %s (instance %s): views = %d.", sessions.LabTime(ev.At).Format(time.TimeOnly), ev.Process, ev.Instance, ev.Views),
		fmt.Sprintf("The count before was made by process %s, which is gone; the session lived on in Redis.", ev.From),
	}
	if o.Process != "" {
		s.Evidence = append(s.Evidence, fmt.Sprintf("The session was created %s by process %s.", o.At.UTC().Format(time.TimeOnly), o.Process))
	}
	return s
}

func (a *App) serversStep(ev *sessions.LabMove, o sessions.Origin, live []instances.Instance) views.LabStep {
	s := views.LabStep{Name: views.StepServers, Title: "Two servers",
		Do: "Run go tool task demo (instances a on :8080, b on :8081), count on one, then on the other."}
	if a.InProcess {
		s.Blocked = "With -store memory the other instance cannot know this session: run go tool task demo without -store memory."
		return s
	}
	if ev != nil {
		s.Done = true
		s.Do = "Count on one instance, then on another: both read the session from the same Redis."
		s.Evidence = []string{
			fmt.Sprintf("Counted at %s by instance %s (process %s): views = %d.", sessions.LabTime(ev.At).Format(time.TimeOnly), ev.Instance, ev.Process, ev.Views),
			fmt.Sprintf("The count before was made by instance %s: both read the session from the same Redis.", ev.From),
		}
		return s
	}
	var names []string
	for _, in := range live {
		if in.Name != a.Instance {
			names = append(names, in.Name)
		}
	}
	if len(names) == 0 {
		s.Blocked = fmt.Sprintf("Only this instance (%s) uses this Redis now, so no other server can serve this session: "+
			"stop it and run go tool task demo (instances a on :8080, b on :8081), then count on one and on the other.", a.Instance)
		return s
	}
	other := "the other"
	if len(names) > 1 {
		other = "another"
	}
	s.Do = fmt.Sprintf("Instances %s share this Redis now: count on this one, then on %s (or the other way round).",
		andList(append([]string{a.Instance}, names...)), other)
	if o.Instance != "" {
		s.Do += fmt.Sprintf(" This session was created on instance %s.", o.Instance)
	}
	return s
}

// andList joins names as a sentence lists them: "a and b", "a, b and c".
func andList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func (a *App) httpOnlyStep(l sessions.Lab) views.LabStep {
	return a.experimentStep(views.LabStep{Name: views.StepHTTPOnly, Title: "Session Security: httpOnly",
		Do: "Below, read document.cookie as a script would: once with HttpOnly, once with the lab switch off."},
		l.HTTPOnly,
		"At %s a script read this session's ID (no HttpOnly).",
		"At %s a script read no session ID (HttpOnly).")
}

func (a *App) fixationStep(l sessions.Lab) views.LabStep {
	return a.experimentStep(views.LabStep{Name: views.StepFixation, Title: "Session fixation",
		Do: "Below, plant this session's ID in a second browser and log in here: without renewal, then with it."},
		l.Fixation,
		"At %s another browser holding the planted ID was logged in by your login (no renewal).",
		"At %s your login renewed the ID another browser held: that copy was left with nothing.")
}

// experimentStep ticks an experiment once both of its outcomes were seen;
// exposed and hidden are the evidence lines, each with the time it was seen.
func (a *App) experimentStep(s views.LabStep, o *sessions.LabOutcomes, exposed, hidden string) views.LabStep {
	if !a.Lab {
		s.Blocked = "The experiments need the lab switches: run with -lab (go tool task run and go tool task demo turn it on)."
		return s
	}
	if o != nil {
		if o.Exposed > 0 {
			s.Evidence = append(s.Evidence, fmt.Sprintf(exposed, sessions.LabTime(o.Exposed).Format(time.TimeOnly)))
		}
		if o.Hidden > 0 {
			s.Evidence = append(s.Evidence, fmt.Sprintf(hidden, sessions.LabTime(o.Hidden).Format(time.TimeOnly)))
		}
		if o.Hidden > 0 && o.Hidden < o.Exposed { // in the order they were seen
			slices.Reverse(s.Evidence)
		}
	}
	s.Done = o.Both()
	return s
}

// roundDur is a TTL as a page shows it.
func roundDur(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(time.Second).String()
}

// isLocalhost: browsers treat http://localhost (and loopback addresses)
// as a secure context, so a Secure cookie works there over plain HTTP.
func isLocalhost(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// setCookieLine is the Set-Cookie line this app sends for the session,
// with the token cut short (a full token is a password).
func (a *App) setCookieLine(token string, noHTTPOnly bool) string {
	c := a.Sessions.Cookie
	v := "…"
	if token != "" {
		v = strings.TrimPrefix(sessions.CutSessionKey(token), sessions.Prefix)
	}
	parts := []string{c.Name + "=" + v, "Path=" + c.Path}
	if c.Secure {
		parts = append(parts, "Secure")
	}
	if c.HttpOnly && !noHTTPOnly {
		parts = append(parts, "HttpOnly")
	}
	switch c.SameSite {
	case http.SameSiteLaxMode:
		parts = append(parts, "SameSite=Lax")
	case http.SameSiteStrictMode:
		parts = append(parts, "SameSite=Strict")
	case http.SameSiteNoneMode:
		parts = append(parts, "SameSite=None")
	}
	return strings.Join(parts, "; ")
}

// writeSessionCookie is scs's WriteSessionCookie, except that a session
// whose lab switch says so (-lab only) gets its cookie without HttpOnly.
func (a *App) writeSessionCookie(ctx context.Context, w http.ResponseWriter, token string, expiry time.Time) {
	a.Sessions.WriteSessionCookie(ctx, w, token, expiry)
	if token == "" || !a.labOf(ctx).NoHTTPOnly {
		return
	}
	h := w.Header()
	cs := h["Set-Cookie"]
	if len(cs) == 0 {
		return
	}
	cs[len(cs)-1] = strings.Replace(cs[len(cs)-1], "; HttpOnly", "", 1)
}

// labBrowserCookie names a browser (-lab only, a random id, not a session),
// so the fixation experiment can tell a second browser holding the same ID.
// It lasts longer than any session cookie ("remember me" included): one
// that went with a browser restart while the session's stayed would make
// the same browser a second one holding the ID.
const (
	labBrowserCookie = "lab-browser"
	labBrowserLasts  = 400 * 24 * time.Hour // the longest browsers keep a cookie
)

// labBrowserID is the lab id the browser sent, "" for none or one this app
// did not issue: the client writes the cookie, and a login stores the id.
func labBrowserID(r *http.Request) string {
	if c, err := r.Cookie(labBrowserCookie); err == nil && len(c.Value) == 16 {
		if _, err := hex.DecodeString(c.Value); err == nil {
			return c.Value
		}
	}
	return ""
}

// labBrowser is this browser's lab id, set now when it has none.
func (a *App) labBrowser(w http.ResponseWriter, r *http.Request) string {
	if id := labBrowserID(r); id != "" {
		return id
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: labBrowserCookie, Value: id, Path: "/", HttpOnly: true,
		MaxAge: int(labBrowserLasts.Seconds()), Secure: a.Sessions.Cookie.Secure, SameSite: http.SameSiteLaxMode})
	return id
}

// noteLabBrowser records that browser opened /lab with this session, and that
// fixation worked if it is a second browser of a login without renewal.
func (a *App) noteLabBrowser(ctx context.Context, token, browser string, l *sessions.Lab, loggedIn bool) error {
	if token == "" || browser == "" {
		return nil
	}
	// Fixation is a browser that held the planted ID before the login: one
	// that took it after (seen first now) hijacked a session, no more.
	seenAt, seenBefore := l.Seen[browser]
	if !seenBefore && len(l.Seen) < maxLabBrowsers {
		seen := map[string]int64{}
		for k, v := range l.Seen {
			seen[k] = v
		}
		seen[browser] = time.Now().UnixMilli()
		if err := a.Ops.LabNote(ctx, token, "seen", seen, true); err != nil && !errors.Is(err, sessions.ErrNoSession) {
			return err
		}
		l.Seen = seen
	}
	if in := l.Login; loggedIn && in != nil && !in.Renewed && in.Shared && in.Browser != browser {
		if seenBefore && seenAt < in.At && (l.Fixation == nil || l.Fixation.Exposed == 0) {
			o := sessions.LabOutcomes{Exposed: time.Now().UnixMilli()}
			if l.Fixation != nil {
				o.Hidden = l.Fixation.Hidden
			}
			if err := a.Ops.LabNote(ctx, token, "fixation", o, true); err != nil && !errors.Is(err, sessions.ErrNoSession) {
				return err
			}
			l.Fixation = &o
			// The browser that logged in shows the step too.
			if err := a.Ops.LabChanged(ctx, token); err != nil {
				a.Log.InfoContext(ctx, "lab: cannot tell the session's pages", "err", err)
			}
		}
	}
	return nil
}

// labHolders are the browsers that opened /lab with this session's ID (-lab
// only), oldest first; nil unless there are two or more.
func (a *App) labHolders(this string, l sessions.Lab) []views.Holder {
	if !a.Lab || len(l.Seen) < 2 {
		return nil
	}
	hs := make([]views.Holder, 0, len(l.Seen))
	for id, at := range l.Seen {
		hs = append(hs, views.Holder{This: id == this, Since: sessions.LabTime(at)})
	}
	slices.SortFunc(hs, func(x, y views.Holder) int { return x.Since.Compare(y.Since) })
	return hs
}

// maxLabBrowsers bounds the browsers one session remembers.
const maxLabBrowsers = 8

// labLogin records a login (-lab only) for the fixation step, and that a
// planted copy failed when the login renewed a token another browser held.
func (a *App) labLogin(r *http.Request, old string, renewed bool) {
	ctx := r.Context()
	l := a.labOf(ctx)
	browser := labBrowserID(r)
	shared := false
	for b := range l.Seen {
		if b != browser {
			shared = true
		}
	}
	now := time.Now().UnixMilli()
	in := &sessions.LabLogin{At: now, Browser: browser, Renewed: renewed, Shared: shared}
	if old != "" {
		in.From = sessions.ID(old)
	}
	l.Login = in
	if shared && renewed {
		o := sessions.LabOutcomes{Hidden: now}
		if l.Fixation != nil {
			o.Exposed = l.Fixation.Exposed
		}
		l.Fixation = &o
	}
	// A renewed token is known to no other browser.
	if renewed {
		l.Seen = nil
	}
	a.putLab(ctx, l)
}

// labNoted records the session's lab as this request's notes left it in the
// store, for the rest of the request to read (labOf).
func labNoted(ctx context.Context, l sessions.Lab) {
	if st, ok := stateOf(ctx); ok {
		st.lab = &l
	}
}

// putLab stores the lab record with the session's next write, keeping the
// switches as they were stored (labOf hides them without -lab), and is what
// labOf gives the rest of the request.
func (a *App) putLab(ctx context.Context, l sessions.Lab) {
	a.Sessions.Put(ctx, sessions.KeyLab, l)
	labNoted(ctx, l)
}

// labSwitch handles POST /lab/httponly and POST /lab/renewal (-lab only): on=0
// turns the protection off for this session, on=1 on; either way the token is
// renewed, so an ID learned before is worth nothing.
func (a *App) labSwitch(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	name := r.PathValue("switch")
	if name != "httponly" && name != "renewal" {
		a.answer(w, r, failNotFound)
		return
	}
	// Only 0 weakens: a typo must not turn a protection off.
	v := r.PostForm.Get("on")
	if v != "0" && v != "1" {
		a.answer(w, r, failLabSwitchValue)
		return
	}
	on := v == "1"
	if a.Sessions.Token(ctx) == "" {
		// The same switch sent twice: the first copy renewed the token.
		if !a.answeredRenewed(w, r) {
			a.answer(w, r, failLabNoSession)
		}
		return
	}
	if !a.labSwitchAllowed(w, r) {
		return
	}
	if err := a.renewLogged(r); errors.Is(err, errRenewed) || errors.Is(err, errEndedMeanwhile) {
		a.notRenewed(w, r, err)
		return
	} else if err != nil {
		a.fail(w, r, err)
		return
	}
	// The lab as the renewal took it: evidence noted since this request
	// loaded the session stays.
	l := a.labOf(ctx)
	if name == "httponly" {
		l.NoHTTPOnly = !on
	} else {
		l.NoRenewal = !on
	}
	l.Seen = nil
	a.putLab(ctx, l)
	a.Log.InfoContext(ctx, "lab switch", "session", a.LogID(a.Sessions.Token(ctx)), "switch", name, "on", on)
	http.Redirect(w, r, "/lab", http.StatusSeeOther)
}

// renewLogged renews the token and, for a logged-in session, moves its
// entry in the user's session index to the new token.
func (a *App) renewLogged(r *http.Request) error {
	ctx := r.Context()
	old := a.Sessions.Token(ctx)
	u, loggedIn := a.currentUser(ctx)
	if err := a.renewToken(r, loggedIn, false); err != nil {
		if loggedIn && !errors.Is(err, errRenewed) && !errors.Is(err, errEndedMeanwhile) {
			a.listedOrDropped(r, u.Username, old)
		}
		return err
	}
	if u, ok := a.currentUser(ctx); ok {
		if err := a.indexLogin(r, u.Username, old); err != nil {
			notKept(ctx) // not listed, so not revocable
			return err
		}
	}
	return nil
}

// labRead handles POST /lab/read (-lab only): what a script read from
// document.cookie (never shown or logged). Nothing, or exactly this session's
// token, is recorded as an outcome; anything else is refused.
func (a *App) labRead(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	token := a.Sessions.Token(ctx)
	read := r.PostForm.Get("read")
	l := a.labOf(ctx)
	if token == "" {
		a.refuse(w, r, failLabNoSession)
		return
	}
	o := sessions.LabOutcomes{}
	if l.HTTPOnly != nil {
		o = *l.HTTPOnly
	}
	now := time.Now().UnixMilli()
	var exposed bool
	switch {
	case read == "" && !l.NoHTTPOnly:
		o.Hidden = now
	case read != "" && l.NoHTTPOnly && subtle.ConstantTimeCompare([]byte(read), []byte(token)) == 1:
		o.Exposed, exposed = now, true
	default:
		a.refuse(w, r, failLabRead)
		return
	}
	if err := a.Ops.LabNote(ctx, token, "httponly", o, true); errors.Is(err, sessions.ErrNoSession) {
		// Ended or renewed (a switch, a logout) while this was read:
		// nothing was recorded, and the page says why.
		if renewed, rerr := a.renewedMeanwhile(ctx); rerr == nil && renewed {
			a.tokenRenewed(w, r)
			return
		}
		a.refuse(w, r, failEndedMeanwhile)
		return
	} else if err != nil {
		a.fail(w, r, err)
		return
	}
	// This tab's steps are read again by HX-Trigger, the session's other
	// open pages by the news.
	if err := a.Ops.LabChanged(ctx, token); err != nil {
		a.Log.InfoContext(ctx, "lab: cannot tell the session's pages", "err", err)
	}
	w.Header().Set("HX-Trigger", views.EventLabChanged)
	a.write(w, r, http.StatusOK, views.LabReadResult(exposed))
}

// labUse handles POST /lab/use (-lab only): this browser takes a pasted,
// existing session ID as its cookie, the lab's stand-in for a cookie editor.
func (a *App) labUse(w http.ResponseWriter, r *http.Request) {
	if !a.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	token := strings.TrimSpace(r.PostForm.Get("id"))
	if i := strings.IndexByte(token, '='); i >= 0 { // "session=..." pasted whole
		token = token[i+1:]
	}
	if !validToken(token) {
		a.answer(w, r, failLabNotToken)
		return
	}
	t, err := a.Ops.Times(ctx, token)
	// No live session has that ID: none stored, a key edited by hand into
	// another type, or one past its end that the next load would delete.
	if errors.Is(err, sessions.ErrNoSession) || sessions.IsWrongType(err) || err == nil && !time.Now().Before(t.End(a.Idle)) {
		a.answer(w, r, failLabNoSuchSession)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// A line a minute, counted by the session taken: a client can send this
	// request at will.
	a.tally(ctx, tallyEvent{kind: "lab use", msg: "lab: a browser took a pasted session ID", level: slog.LevelInfo,
		names: bySession, key: a.LogID(token)})
	a.Sessions.WriteSessionCookie(ctx, w, token, t.Deadline)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/lab", http.StatusSeeOther)
}

// labPath is this request's path for the SVG: every value is this
// request's own.
func (a *App) labPath(r *http.Request, token, key string, ttl time.Duration, noHTTPOnly bool, list []sessions.Browser, id string, live []instances.Instance) views.LabPath {
	ctx := r.Context()
	p := views.LabPath{Browser: useragentName(r), Instance: a.Instance, Process: a.ProcessID, InProcess: a.InProcess,
		Cookie: "no session cookie"}
	if token != "" {
		p.Cookie = a.Sessions.Cookie.Name + "=" + strings.TrimPrefix(sessions.CutSessionKey(token), sessions.Prefix)
		p.Key, p.TTL = key, roundDur(ttl)
	} else if st, _ := stateOf(ctx); st.isStale() && st.presented != "" {
		// The browser sent the cookie of a session that ended: the picture
		// says so, as the page's banner does, not "no session cookie".
		gone := sessions.CutSessionKey(st.presented)
		p.Cookie = a.Sessions.Cookie.Name + "=" + strings.TrimPrefix(gone, sessions.Prefix) + " (ended)"
		switch {
		case a.InProcess && st.isLost():
			p.Ended = gone + " is not in this process: lost"
		case a.InProcess:
			p.Ended = gone + " is not in this process: ended"
		case st.isUnreadable():
			// Still in Redis, as the banner and the Redis panel say.
			p.Ended = gone + " holds no session: ended"
		default:
			p.Ended = gone + " is not in Redis: ended"
		}
	}
	attrs := strings.SplitN(a.setCookieLine(token, noHTTPOnly), "; ", 2)
	if len(attrs) == 2 {
		p.CookieAttrs = attrs[1]
	}
	p.Others = labOthers(list, id)
	// The instances that served this session, to mark them among the live ones.
	served := map[string]bool{}
	if o, ok := a.Sessions.Get(ctx, sessions.KeyOrigin).(sessions.Origin); ok {
		served[o.Instance] = true
	}
	if c, ok := a.Sessions.Get(ctx, sessions.KeyCounted).(sessions.Counted); ok {
		served[c.Instance] = true
	}
	if l := a.labOf(ctx); l.Servers != nil {
		served[l.Servers.From], served[l.Servers.Instance] = true, true
	}
	for _, in := range live {
		if in.Name == a.Instance || len(p.OtherInstances) >= maxPathRows {
			continue
		}
		line := fmt.Sprintf("%s · process %s", in.Name, in.Process)
		if served[in.Name] {
			line += " · served this session"
		}
		p.OtherInstances = append(p.OtherInstances, line)
	}
	return p
}

// maxPathRows bounds each list in the picture: it has room for three.
const maxPathRows = 3

// useragentName is the browser as the browsers list names it.
func useragentName(r *http.Request) string { return useragent.Parse(r.UserAgent()).String() }

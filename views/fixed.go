package views

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/a-h/templ"
)

// Fragments that repeat from page to page are rendered by templ once and
// then written as they are: each templ expression costs an fmt.Sprint, an
// escape and an allocation or two, and the footer's badge, the nav and the
// constant parts of the layout were half of a page's rendering
// (BenchmarkRenderProfile).

// renderedOnce is c rendered now, for a fragment that does not change.
func renderedOnce(c templ.Component) templ.Component {
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		panic(err)
	}
	return templ.Raw(b.String())
}

// memo keeps renderings of a component by its inputs: K must hold every
// input the component reads. Past max renderings it starts afresh, so a
// stream of new inputs costs memory only up to max.
type memo[K comparable] struct {
	max int
	mu  sync.RWMutex
	m   map[K]templ.Component
}

func (m *memo[K]) get(k K, render func() templ.Component) templ.Component {
	m.mu.RLock()
	c, ok := m.m[k]
	m.mu.RUnlock()
	if ok {
		return c
	}
	c = renderedOnce(render())
	m.mu.Lock()
	if m.m == nil || len(m.m) >= m.max {
		m.m = make(map[K]templ.Component)
	}
	m.m[k] = c
	m.mu.Unlock()
	return c
}

// InstanceBadge names the instance and the process that answered: a
// restart shows as a new process id and start time.
func InstanceBadge(p Process, oob bool) templ.Component {
	since := ago(p.Started, p.Now)
	return badges.get(badgeKey{p.ID, p.Instance, p.Started, since, oob}, func() templ.Component {
		return instanceBadge(p, since, oob)
	})
}

type badgeKey struct {
	id, instance string
	started      time.Time
	since        string
	oob          bool
}

// badges: one process, its age in minutes, in and out of band.
var badges = memo[badgeKey]{max: 64}

// NavLinks is the part of the nav that depends on who is logged in; htmx
// responses replace it out of band, so a login or logout shows at once.
func NavLinks(user string, lab LabProgress, oob bool) templ.Component {
	return navs.get(navKey{user, lab, oob}, func() templ.Component { return navLinks(user, lab, oob) })
}

type navKey struct {
	user string
	lab  LabProgress
	oob  bool
}

// navs: a few hundred users' navs (about 600 B each).
var navs = memo[navKey]{max: 256}

// The layout's fragments without inputs.
var (
	restartControlFixed = renderedOnce(restartControl())
	traceSlotFixed      = renderedOnce(redisTraceSlot(false))
	traceSlotOOBFixed   = renderedOnce(redisTraceSlot(true))
	sessionEndedFixed   = renderedOnce(sessionEndedHook())
	liveStatusFixed     = renderedOnce(liveStatus())
	redisPanelFixed     = renderedOnce(redisPanelLoader())
	liveOwnFixed        = renderedOnce(liveOwn())
	countPanelHookFixed = renderedOnce(countPanelHook())
)

// RestartControl is the demo's "Restart this server" (restartControl).
func RestartControl() templ.Component { return restartControlFixed }

// RedisTraceSlot is the panel's "what this request did in Redis" section
// (redisTraceSlot).
func RedisTraceSlot(oob bool) templ.Component {
	if oob {
		return traceSlotOOBFixed
	}
	return traceSlotFixed
}

// SessionEndedHook moves a page whose session has ended (sessionEndedHook).
func SessionEndedHook() templ.Component { return sessionEndedFixed }

// SessionOrigin is sessionOrigin, or nothing when it has nothing to say (a
// session of this process, as most are): calling a templ component costs
// its closures and a context layer even when it writes nothing.
func SessionOrigin(o Origin) templ.Component {
	if !o.Survived() && !o.OtherInstance() {
		return templ.NopComponent
	}
	return sessionOrigin(o)
}

// StaySignedInControl is the profile's "stay signed in" control
// (staySignedInControl). Neither just touched nor warning, as a page shows
// it, it says no time, so it is rendered once for each value of Pushed.
func StaySignedInControl(s StaySignedIn) templ.Component {
	switch {
	case s.Touched || s.Warn():
		return staySignedInControl(s)
	case s.Pushed:
		return staySignedInPushedFixed
	}
	return staySignedInFixed
}

// ProfileLive is the profile's live region (profileLive): around a kept
// control (StaySignedInControl) it is kept too, its two spread attributes
// included (templ lowercases each name into a new string to classify it).
func ProfileLive(s StaySignedIn) templ.Component {
	if s.Touched || s.Warn() || s.Pushed {
		return profileLive(s)
	}
	return profileLiveFixed
}

// quiet is a control that is not warning: its deadline is after its warning.
var quiet = StaySignedIn{WarnBefore: -1}

var (
	staySignedInFixed       = renderedOnce(staySignedInControl(quiet))
	staySignedInPushedFixed = renderedOnce(staySignedInControl(StaySignedIn{WarnBefore: quiet.WarnBefore, Pushed: true}))
	profileLiveFixed        = renderedOnce(profileLive(quiet))
)

// Counter is the count control (counter) with views in it.
func Counter(views int) slottedText { return counterSlotted.with(strconv.Itoa(views)) }

// ThisViews is this browser's count in its row (thisViews), out of band for
// a count's answer.
func ThisViews(views int, oob bool) slottedText {
	if oob {
		return thisViewsOOBSlotted.with(strconv.Itoa(views))
	}
	return thisViewsSlotted.with(strconv.Itoa(views))
}

var (
	counterSlotted      = slottedOnce(counter)
	thisViewsSlotted    = slottedOnce(func(c templ.Component) templ.Component { return thisViews(c, false) })
	thisViewsOOBSlotted = slottedOnce(func(c templ.Component) templ.Component { return thisViews(c, true) })
	browsersBoxSlotted  = slottedOnce(browsersBox)
)

// slotted is a fragment rendered once around a text or a component that
// changes, kept as what comes before and after it: the counter's, this
// row's and the browsers box's attributes (a spread each) cost more than the
// rest of a count's rendering.
type slotted struct{ before, after string }

// slotMarker stands for the text while a slotted fragment is rendered.
const slotMarker = "\x00slot\x00"

func slottedOnce(fragment func(text templ.Component) templ.Component) *slotted {
	var b strings.Builder
	if err := fragment(templ.Raw(slotMarker)).Render(context.Background(), &b); err != nil {
		panic(err)
	}
	before, after, ok := strings.Cut(b.String(), slotMarker)
	if !ok || strings.Contains(after, slotMarker) {
		panic("views: a slotted fragment must write its text once")
	}
	return &slotted{before, after}
}

// with is the fragment with s, escaped as templ escapes text, in its slot.
func (f *slotted) with(s string) slottedText { return slottedText{f, s} }

// around is the fragment with c in its slot.
func (f *slotted) around(c templ.Component) slottedComponent { return slottedComponent{f, c} }

type slottedComponent struct {
	f *slotted
	c templ.Component
}

func (t slottedComponent) Render(ctx context.Context, w io.Writer) error {
	if _, err := io.WriteString(w, t.f.before); err != nil {
		return err
	}
	if err := t.c.Render(ctx, w); err != nil {
		return err
	}
	_, err := io.WriteString(w, t.f.after)
	return err
}

// slottedText is a component of its own type, not a templ.Component, so
// that a template calling it boxes nothing.
type slottedText struct {
	f *slotted
	s string
}

func (t slottedText) Render(ctx context.Context, w io.Writer) error {
	if _, err := io.WriteString(w, t.f.before); err != nil {
		return err
	}
	if err := text(t.s).Render(ctx, w); err != nil {
		return err
	}
	_, err := io.WriteString(w, t.f.after)
	return err
}

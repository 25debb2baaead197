package views

import (
	"context"
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

package handlers

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A refusal (a throttle's 429, a demo control's 404 to a stranger, a live
// stream past a bound, a connection past a bound, a cross-origin 403) or a
// request failed by a Redis outage is logged a line a minute per kind
// (tallylog.go), and that line says what happened since the last one: how
// many, from how many clients (origins, routes), and those most refused.
// One request's client beside everyone's count would read as if it had made
// them all.

// perMinuteEvery is how often one kind of event is logged.
const perMinuteEvery = time.Minute

// maxTallied bounds the clients a tally holds, so a flood from many
// addresses cannot grow it; maxNamed is how many a line names.
const (
	maxTallied = 256
	maxNamed   = 3
)

// refusalTally counts refusals by client (or by whatever a line names
// them by: an origin, a route) until the next line. Past
// maxTallied clients it keeps the heaviest as the Space-Saving algorithm does
// (Metwally et al.): a new client takes the place of the least refused and
// inherits its count as possibly others', so any client with more than
// 1/maxTallied of the refusals is still named, with a count it certainly
// reached. Its zero value is ready to use.
type refusalTally struct {
	refused int
	clients map[string]int // client -> its place in counts
	counts  []tallied      // in the order first refused
	more    bool           // a client came when the tally was full
}

type tallied struct {
	client string
	n      int // refusals counted to the client
	others int // of n, how many may be those of the clients it replaced
}

// add counts one refusal of client.
func (t *refusalTally) add(client string) {
	t.refused++
	if i, ok := t.clients[client]; ok {
		t.counts[i].n++
		return
	}
	if t.clients == nil {
		t.clients = map[string]int{}
	}
	if len(t.counts) < maxTallied {
		t.clients[client] = len(t.counts)
		t.counts = append(t.counts, tallied{client: client, n: 1})
		return
	}
	t.more = true
	least := 0
	for i, c := range t.counts {
		if c.n < t.counts[least].n {
			least = i
		}
	}
	delete(t.clients, t.counts[least].client)
	n := t.counts[least].n
	t.counts[least] = tallied{client: client, n: n + 1, others: n}
	t.clients[client] = least
}

// summary is what a line says about the refusals counted.
func (t *refusalTally) summary() refusals {
	s := refusals{Refused: t.refused, Clients: len(t.counts), More: t.more}
	named := make([]refuser, len(t.counts))
	for i, c := range t.counts {
		named[i] = refuser{Client: c.client, Refused: c.n - c.others, AtLeast: c.others > 0}
	}
	slices.SortStableFunc(named, func(a, b refuser) int { return b.Refused - a.Refused })
	if len(named) > maxNamed {
		named = named[:maxNamed]
	}
	s.Top = named
	return s
}

// refusals is what one line says: every refusal since the last line, from
// how many clients (when More, more than Clients), and the most refused.
type refusals struct {
	Refused int
	Clients int
	More    bool
	Top     topRefusers
}

// tallyNames names a line's fields after what its tally counts.
type tallyNames struct {
	count    string // every event since the last line ("refused")
	distinct string // how many keys ("clients"; with _more_than past the bound)
	key      string // what each of top is ("client")
}

var (
	byClient = tallyNames{count: "refused", distinct: "clients", key: "client"}
	byOrigin = tallyNames{count: "blocked", distinct: "origins", key: "origin"}
	byRoute  = tallyNames{count: "failed_requests", distinct: "routes", key: "route"}
	// Pasted session IDs a browser took in the lab (POST /lab/use), by
	// session (its LogID).
	bySession = tallyNames{count: "taken", distinct: "sessions", key: "session"}
	// Live streams ended to make room, by the address whose stream took
	// the place (openStreams.admit).
	byTaker = tallyNames{count: "ended", distinct: "clients", key: "client"}
)

// argsAs are the line's attributes named after what was counted.
func (s refusals) argsAs(n tallyNames) []any {
	distinct := n.distinct
	if s.More {
		distinct += "_more_than"
	}
	return []any{n.count, s.Refused, distinct, s.Clients, "top", namedTop{s.Top, n}}
}

// refuser is one client a line names, with the refusals it certainly had
// (AtLeast: maybe more, when the tally had to forget some).
type refuser struct {
	Client  string
	Refused int
	AtLeast bool
}

// topRefusers reads as a phrase in the text log ("192.0.2.1 (5), 2001:db8::/64
// (at least 2)") and as a list of objects in the JSON one.
type topRefusers []refuser

func (t topRefusers) MarshalText() ([]byte, error) {
	var b strings.Builder
	for i, r := range t {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r.Client)
		b.WriteString(" (")
		if r.AtLeast {
			b.WriteString("at least ")
		}
		b.WriteString(strconv.Itoa(r.Refused))
		b.WriteString(")")
	}
	return []byte(b.String()), nil
}

// namedTop is top as a line names it: in JSON a list of objects whose
// fields say what was counted ({"origin":…,"blocked":2}).
type namedTop struct {
	top   topRefusers
	names tallyNames
}

func (t namedTop) MarshalText() ([]byte, error) { return t.top.MarshalText() }

func (t namedTop) MarshalJSON() ([]byte, error) {
	list := make([]map[string]any, len(t.top))
	for i, r := range t.top {
		list[i] = map[string]any{t.names.key: r.Client, t.names.count: r.Refused}
		if r.AtLeast {
			list[i]["at_least"] = true
		}
	}
	return json.Marshal(list)
}

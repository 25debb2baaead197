package sessions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/alexedwards/scs/v2"

	"github.com/sessionlab/sessionlab/internal/throttle"
)

// MemoryOps are the in-place session changes for -store memory; one mutex
// makes each atomic within the process, all a memory store can promise.
type MemoryOps struct {
	Store   scs.Store     // the session store scs writes to
	Idle    time.Duration // idle timeout, to keep a key's expiry on update
	Publish func(channel, payload string)
	// Limit counts what Ops counts inside its script (the new-session limit,
	// in Redis like every limit): throttle.CountStep.
	Limit func(ctx context.Context, s throttle.Step) (time.Duration, error)

	mu        sync.Mutex
	renewed   map[string]renewal            // by token ID
	replaced  map[string]time.Time          // by token ID: until when (MarkReplaced)
	loggedOut map[string]time.Time          // by token ID: until when (EndUnlessRenewed)
	accounts  map[string]unreadable         // by token ID (MarkAccountUnreadable)
	browsers  map[string]map[string]Browser // address -> session ID -> its last count
	seen      map[string]map[string]int64   // address -> session ID -> when it last counted (unix ms), listed or not
}

// IncrViews adds one view (see Ops.IncrViews).
func (m *MemoryOps) IncrViews(ctx context.Context, token, user string, v Visit) (int, BrowserList, Lab, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	deadline, values, err := m.find(token)
	if err != nil {
		return 0, BrowserList{}, Lab{}, err
	}
	n, _ := values[KeyViews].(int)
	n++
	values[KeyViews] = n
	// An update keeps the key's lifetime, like KEEPTTL.
	if err := m.save(token, deadline, values, timesOf(deadline, values).End(m.Idle)); err != nil {
		return 0, BrowserList{}, Lab{}, err
	}
	m.publish(SessionChannel(ID(token)), MsgCountPrefix+strconv.Itoa(n))
	return n, m.noteBrowser(token, n, v), Lab{}, nil // memory mode has no restart or servers step
}

// NewBrowser records the first count of a session not stored yet (see
// Ops.NewBrowser). It writes no session: the save writes it in this process.
func (m *MemoryOps) NewBrowser(ctx context.Context, token string, views int, v Visit, limit throttle.Step, first *Written) (BrowserList, time.Duration, error) {
	if first != nil {
		return BrowserList{}, 0, errors.New("sessions: new browser: a session to write, and no Redis to write it in")
	}
	if limit.Key != "" {
		if m.Limit == nil {
			return BrowserList{}, 0, fmt.Errorf("sessions: new browser: a limit to count, and no Limit to count it")
		}
		if wait, err := m.Limit(ctx, limit); err != nil || wait > 0 {
			return BrowserList{}, wait, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.noteBrowser(token, views, v), 0, nil
}

// Browsers reads an address's list (see Ops.Browsers).
func (m *MemoryOps) Browsers(ctx context.Context, addr string) (BrowserList, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.listOf(addr, time.Now()), nil
}

// MoveBrowser gives a session's row to its new token (see Ops.MoveBrowser).
func (m *MemoryOps) MoveBrowser(ctx context.Context, oldToken, newToken string, views int, v Visit) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.browsers[v.Addr][ID(oldToken)]
	if !ok {
		return nil
	}
	delete(m.browsers[v.Addr], ID(oldToken))
	at := m.seen[v.Addr][ID(oldToken)]
	delete(m.seen[v.Addr], ID(oldToken))
	m.seen[v.Addr][ID(newToken)] = at
	b.ID, b.Views, b.LoggedIn = ID(newToken), views, v.LoggedIn
	m.browsers[v.Addr][b.ID] = b
	m.publishList(v.Addr, m.listOf(v.Addr, time.Now()))
	return nil
}

// DropBrowser takes an ended session's row off the list (see Ops.DropBrowser).
func (m *MemoryOps) DropBrowser(ctx context.Context, id, addr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.browsers[addr][id]; !ok {
		return nil
	}
	delete(m.browsers[addr], id)
	delete(m.seen[addr], id)
	m.publishList(addr, m.listOf(addr, time.Now()))
	return nil
}

// PageChanged is Browsers: in memory mode the list does not say which
// browsers have a page open (views.Browsers.Presence), so nothing changes.
func (m *MemoryOps) PageChanged(ctx context.Context, token, addr string) (BrowserList, error) {
	return m.Browsers(ctx, addr)
}

// listOf is an address's list as Browsers reads it. The caller holds mu.
func (m *MemoryOps) listOf(addr string, now time.Time) BrowserList {
	var list []Browser
	for _, b := range m.browsers[addr] {
		if now.Sub(b.CountedAt()) < BrowsersWindow {
			list = append(list, b)
		}
	}
	SortBrowsers(list)
	list = list[:min(len(list), MaxBrowsers)]
	return BrowserList{Rows: list, Total: max(m.counted(addr, now), len(list))}
}

func (m *MemoryOps) publishList(addr string, l BrowserList) {
	if b, err := json.Marshal(l.Rows); err == nil {
		m.publish(BrowsersChannel(addr), MsgBrowsersPrefix+strconv.Itoa(l.Total)+" "+string(b))
	}
}

// counted is how many browsers of addr counted within the window; mu held.
func (m *MemoryOps) counted(addr string, now time.Time) int {
	n := 0
	for _, at := range m.seen[addr] {
		if now.Sub(time.UnixMilli(at)) < BrowsersWindow {
			n++
		}
	}
	return n
}

// noteBrowser is note_browser (see Ops) for this process. The caller holds mu.
func (m *MemoryOps) noteBrowser(token string, views int, v Visit) BrowserList {
	now := time.Now()
	if m.browsers == nil {
		m.browsers = map[string]map[string]Browser{}
		m.seen = map[string]map[string]int64{}
	}
	if m.seen[v.Addr] == nil {
		m.seen[v.Addr] = map[string]int64{}
	}
	id := ID(token)
	m.seen[v.Addr][id] = now.UnixMilli()
	for addr, set := range m.seen {
		for id, at := range set {
			if now.Sub(time.UnixMilli(at)) >= BrowsersWindow || len(set) > maxCounted {
				delete(set, id)
			}
		}
		if len(set) == 0 {
			delete(m.seen, addr)
		}
	}
	if m.browsers[v.Addr] == nil {
		m.browsers[v.Addr] = map[string]Browser{}
	}
	m.browsers[v.Addr][id] = Browser{ID: id, Device: v.device(), LoggedIn: v.LoggedIn, Views: views, At: now.UnixMilli()}
	var list []Browser
	for addr, set := range m.browsers {
		for id, b := range set {
			if now.Sub(b.CountedAt()) >= BrowsersWindow {
				delete(set, id)
			} else if addr == v.Addr {
				list = append(list, b)
			}
		}
		if len(set) == 0 {
			delete(m.browsers, addr)
		}
	}
	SortBrowsers(list)
	for _, b := range list[min(len(list), MaxBrowsers):] {
		delete(m.browsers[v.Addr], b.ID)
	}
	l := BrowserList{Rows: list[:min(len(list), MaxBrowsers)], Total: max(len(m.seen[v.Addr]), min(len(list), MaxBrowsers))}
	m.publishList(v.Addr, l)
	l.Self = id
	return l
}

// Touch sets last seen and the expiry (see Ops.Touch).
func (m *MemoryOps) Touch(ctx context.Context, token, user string, seen, expiry time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	deadline, values, err := m.find(token)
	if err != nil {
		return err
	}
	values[KeySeen] = seen.UTC().Truncate(time.Millisecond)
	return m.save(token, deadline, values, expiry)
}

// Take reads and deletes a session and marks it renewed (see Ops.Take).
func (m *MemoryOps) Take(ctx context.Context, token string) (Taken, error) {
	return m.take(token, true)
}

// TakeLive is Take for a renewal that is not a login (see Ops.TakeLive).
func (m *MemoryOps) TakeLive(ctx context.Context, token string) (Taken, error) {
	return m.take(token, false)
}

func (m *MemoryOps) take(token string, login bool) (Taken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, found, err := m.Store.Find(token)
	if err != nil {
		return Taken{}, fmt.Errorf("sessions: take: %w", err)
	}
	if !found {
		_, renewed := m.renewedNow(token)
		switch {
		case !login && renewed:
			return Taken{}, ErrTokenRenewed
		case login && !renewed:
			m.markRenewed(token, 0)
		}
		return Taken{}, ErrNoSession
	}
	if err := m.Store.Delete(token); err != nil {
		return Taken{}, fmt.Errorf("sessions: take: %w", err)
	}
	t := taken(b)
	m.markRenewed(token, t.Views)
	m.publish(SessionChannel(ID(token)), MsgEnded)
	return t, nil
}

// Times reads a session's deadline and last activity (see Ops.Times).
func (m *MemoryOps) Times(ctx context.Context, token string) (Times, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, found, err := m.Store.Find(token)
	if err != nil {
		return Times{}, fmt.Errorf("sessions: times: %w", err)
	}
	if !found {
		return Times{}, ErrNoSession
	}
	return timesOfStored(b)
}

// Ended tells a session's open pages that it has ended (see Ops.Ended).
func (m *MemoryOps) Ended(ctx context.Context, token string) error {
	m.publish(SessionChannel(ID(token)), MsgEnded)
	return nil
}

// LabChanged tells a session's open pages that its lab record changed (see Ops.LabChanged).
func (m *MemoryOps) LabChanged(ctx context.Context, token string) error {
	m.publish(SessionChannel(ID(token)), MsgLab)
	return nil
}

func (m *MemoryOps) publish(channel, payload string) {
	if m.Publish != nil {
		m.Publish(channel, payload)
	}
}

// markRenewed records that token was renewed, carrying views; mu held.
func (m *MemoryOps) markRenewed(token string, views int) {
	now := time.Now()
	if m.renewed == nil {
		m.renewed = map[string]renewal{}
	}
	maps.DeleteFunc(m.renewed, func(_ string, r renewal) bool { return now.After(r.until) })
	m.renewed[ID(token)] = renewal{until: now.Add(RenewedFor), views: views}
}

// renewedNow is the live renewal of token; the caller holds mu.
func (m *MemoryOps) renewedNow(token string) (renewal, bool) {
	r, ok := m.renewed[ID(token)]
	return r, ok && time.Now().Before(r.until)
}

// Renewed reports whether token was renewed, and its views (see Ops.Renewed).
func (m *MemoryOps) Renewed(ctx context.Context, token string) (views int, renewed bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.renewedNow(token)
	return r.views, ok, nil
}

// RenewedInFlight reports a renewal within RenewalInFlight (see Ops.RenewedInFlight).
func (m *MemoryOps) RenewedInFlight(ctx context.Context, token string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.renewedNow(token)
	return ok && time.Until(r.until) > RenewedFor-RenewalInFlight, nil
}

// KeepUnlessMoved deletes a session written under a token a renewal or a
// logout took meanwhile (see Ops.KeepUnlessMoved).
func (m *MemoryOps) KeepUnlessMoved(ctx context.Context, token string) (Kept, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, renewed := m.renewedNow(token)
	out := time.Now().Before(m.loggedOut[ID(token)])
	if !renewed && !out {
		return KeptAsWritten, nil
	}
	_, written, err := m.Store.Find(token)
	if err == nil && written {
		err = m.Store.Delete(token)
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("sessions: keep unless moved: %w", err)
	case !renewed:
		return KeptEnded, nil
	case written:
		return KeptUndone, nil
	}
	return KeptCarried, nil
}

// EndUnlessRenewed deletes a session unless a renewal took it first (see
// Ops.EndUnlessRenewed).
func (m *MemoryOps) EndUnlessRenewed(ctx context.Context, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, found, err := m.Store.Find(token)
	if err != nil {
		return fmt.Errorf("sessions: end: %w", err)
	}
	if !found {
		if _, renewed := m.renewedNow(token); renewed {
			return ErrTokenRenewed
		}
		return nil
	}
	if err := m.Store.Delete(token); err != nil {
		return fmt.Errorf("sessions: end: %w", err)
	}
	now := time.Now()
	if m.loggedOut == nil {
		m.loggedOut = map[string]time.Time{}
	}
	maps.DeleteFunc(m.loggedOut, func(_ string, until time.Time) bool { return now.After(until) })
	m.loggedOut[ID(token)] = now.Add(RenewedFor)
	return nil
}

// MarkReplaced records a replaced token (see Ops.MarkReplaced).
func (m *MemoryOps) MarkReplaced(ctx context.Context, token string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if m.replaced == nil {
		m.replaced = map[string]time.Time{}
	}
	maps.DeleteFunc(m.replaced, func(_ string, until time.Time) bool { return now.After(until) })
	m.replaced[ID(token)] = now.Add(RenewedFor)
	return nil
}

// Replaced reports a renewed or replaced token (see Ops.Replaced).
func (m *MemoryOps) Replaced(ctx context.Context, token string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, renewed := m.renewedNow(token)
	until, replaced := m.replaced[ID(token)]
	return renewed || replaced && time.Now().Before(until), nil
}

// unreadable is a token's MarkAccountUnreadable: the account key, until when.
type unreadable struct {
	key   string
	until time.Time
}

// MarkAccountUnreadable records a logout for an unreadable account (see
// Ops.MarkAccountUnreadable).
func (m *MemoryOps) MarkAccountUnreadable(ctx context.Context, token, accountKey string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if m.accounts == nil {
		m.accounts = map[string]unreadable{}
	}
	maps.DeleteFunc(m.accounts, func(_ string, u unreadable) bool { return now.After(u.until) })
	m.accounts[ID(token)] = unreadable{accountKey, now.Add(UnreadableFor)}
	return nil
}

// AccountUnreadable is what MarkAccountUnreadable recorded (see
// Ops.AccountUnreadable).
func (m *MemoryOps) AccountUnreadable(ctx context.Context, token string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.accounts[ID(token)]; ok && time.Now().Before(u.until) {
		return u.key, nil
	}
	return "", nil
}

// renewal is a renewed token: until when it counts as such, and its views.
type renewal struct {
	until time.Time
	views int
}

func (m *MemoryOps) find(token string) (time.Time, map[string]any, error) {
	b, found, err := m.Store.Find(token)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("sessions: find: %w", err)
	}
	if !found {
		return time.Time{}, nil, ErrNoSession
	}
	return Codec{}.Decode(b)
}

func (m *MemoryOps) save(token string, deadline time.Time, values map[string]any, expiry time.Time) error {
	b, err := Codec{}.Encode(deadline, values)
	if err != nil {
		return err
	}
	if err := m.Store.Commit(token, b, expiry); err != nil {
		return fmt.Errorf("sessions: save: %w", err)
	}
	return nil
}

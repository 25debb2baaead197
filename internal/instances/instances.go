// Package instances lets the instances that share one Redis know of each
// other, each announcing itself in one small hash, so the lab can tell a
// one-instance setup from `task demo`'s two.
package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/sessionlab/sessionlab/internal/redistrace"
)

const (
	// Key is the hash of live instances: field = instance name, value =
	// JSON {process, at}, at from Redis's clock (so from one clock for all).
	Key = "instances"
	// Every is how often an instance announces itself; Window is how long
	// an announce counts: three missed ones and the instance is gone.
	Every  = 5 * time.Second
	Window = 3 * Every
)

// Instance is one live instance.
type Instance struct {
	Name    string
	Process string    // its process's short id (a restart changes it)
	At      time.Time // its last announce
}

// roster announces (unless ARGV[1], the name, is ""), drops stale entries and
// returns the live ones. KEYS[1] the hash; ARGV: name, process, Window (ms).
var roster = redistrace.NewScript("instances", `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[3])
local announce = ARGV[1] ~= ''
-- A hand edit that made the key another type (WRONGTYPE): no instance is
-- listed, and the next announce starts the hash again. (No TYPE: the
-- documented ACL user need not have it.)
local function wrong_type(e)
  local m = type(e) == 'table' and e.err or tostring(e)
  if not string.find(m, 'WRONGTYPE', 1, true) then error(e, 0) end
end
if announce then
  local entry = cjson.encode({process = ARGV[2], at = now})
  local ok, e = pcall(redis.call, 'HSET', KEYS[1], ARGV[1], entry)
  if not ok then
    wrong_type(e)
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], ARGV[1], entry)
  end
end
local ok, all = pcall(redis.call, 'HGETALL', KEYS[1])
if not ok then
  wrong_type(all)
  return {}
end
local live = {}
for i = 1, #all, 2 do
  local ok, d = pcall(cjson.decode, all[i+1])
  if ok and type(d) == 'table' and now - (tonumber(d.at) or 0) < window then
    live[#live+1] = all[i]
    live[#live+1] = all[i+1]
  elseif announce then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
if announce then redis.call('PEXPIRE', KEYS[1], window) end
return live`)

// leave: KEYS[1] the hash; ARGV[1] name, ARGV[2] process. Only this
// process's own entry: a newer process of the same name keeps its own.
var leave = redistrace.NewScript("leave", `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local ok, d = pcall(cjson.decode, raw)
if ok and type(d) == 'table' and d.process == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`)

// Roster is this instance's view of the instances on its Redis.
type Roster struct {
	rdb           rueidis.Client
	name, process string
}

// New is the roster of the instance name whose process is process.
func New(rdb rueidis.Client, name, process string) *Roster {
	return &Roster{rdb: rdb, name: name, process: process}
}

// Announce says this instance is live now, and returns every live one.
func (r *Roster) Announce(ctx context.Context) ([]Instance, error) {
	return r.exec(ctx, r.name)
}

// Live is every instance that announced itself within Window, this one
// first (when it did), then by name.
func (r *Roster) Live(ctx context.Context) ([]Instance, error) {
	return r.exec(ctx, "")
}

func (r *Roster) exec(ctx context.Context, name string) ([]Instance, error) {
	m, err := roster.Exec(ctx, r.rdb, []string{Key}, []string{name, r.process,
		strconv.FormatInt(Window.Milliseconds(), 10)}).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("instances: %w", err)
	}
	list := make([]Instance, 0, len(m))
	for n, raw := range m {
		var v struct {
			Process string `json:"process"`
			At      int64  `json:"at"`
		}
		if json.Unmarshal([]byte(raw), &v) == nil {
			list = append(list, Instance{Name: n, Process: v.Process, At: time.UnixMilli(v.At).UTC()})
		}
	}
	slices.SortFunc(list, func(x, y Instance) int {
		if (x.Name == r.name) != (y.Name == r.name) {
			if x.Name == r.name {
				return -1
			}
			return 1
		}
		return strings.Compare(x.Name, y.Name)
	})
	return list, nil
}

// Run announces every Every until stop, which removes this instance at once.
// A failed announce is logged at debug level: Redis being away is logged elsewhere.
func (r *Roster) Run(log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	announce := func() {
		actx, acancel := context.WithTimeout(ctx, Every)
		defer acancel()
		if _, err := r.Announce(actx); err != nil && ctx.Err() == nil {
			log.Debug("instance not announced", "err", err)
		}
	}
	announce()
	go func() {
		defer close(done)
		tick := time.NewTicker(Every)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				announce()
			}
		}
	}()
	return func() {
		cancel()
		<-done
		lctx, lcancel := context.WithTimeout(context.Background(), time.Second)
		defer lcancel()
		_ = leave.Exec(lctx, r.rdb, []string{Key}, []string{r.name, r.process}).Error()
	}
}

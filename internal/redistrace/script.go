package redistrace

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/redis/rueidis"
)

// A script's own commands are seen by no client (MONITOR prints them), so a
// prelude wraps redis.call and the script returns {what it ran, its result}:
// one string, commands split by ranCommand, arguments by ranArg, an argument
// over ranKeep bytes cut to ranKeep, then ranCut and its full length.
const (
	ranCommand = "\x1e"
	ranArg     = "\x1f"
	ranCut     = "\x1d"
	ranKeep    = 64 // a session key (sess: and 43 characters) whole, so a page can cut its token
)

const prelude = `
local ran, redis_ = {}, redis
local type, sub, format, concat, find, rcall, rpcall = type, string.sub, string.format, table.concat, string.find, redis.call, redis.pcall
local function note(...)
  local c = {...}
  local s = concat(c, '\31')
  if #s > 64 then
    local cut = false
    for i = 1, #c do
      local a = c[i]
      if type(a) == 'string' and #a > 64 then
        c[i], cut = sub(a, 1, 64) .. '\29' .. format('%d', #a), true
      end
    end
    if cut then s = concat(c, '\31') end
  end
  ran[#ran + 1] = s
end
local redis = setmetatable({
  call = function(...) -- note's body again: one Lua call more per command costs Redis 2-3 %
    local c = {...}
    local s = concat(c, '\31')
    if #s > 64 then
      local cut = false
      for i = 1, #c do
        local a = c[i]
        if type(a) == 'string' and #a > 64 then
          c[i], cut = sub(a, 1, 64) .. '\29' .. format('%d', #a), true
        end
      end
      if cut then s = concat(c, '\31') end
    end
    ran[#ran + 1] = s
    return rcall(...)
  end,
  -- A command the ACL refuses did not run, and MONITOR does not print it
  -- (Redis 7.0 says "can't run this command", later ones NOPERM).
  pcall = function(...)
    note(...)
    local r = rpcall(...)
    if type(r) == 'table' and r.err and (find(r.err, 'NOPERM', 1, true) or find(r.err, "can't run this command", 1, true)) then
      ran[#ran] = nil
    end
    return r
  end}, {__index = redis_})
local function script()
`

// A script that fails has still run what it ran before (Redis keeps its
// writes, and MONITOR printed them), so the epilogue catches the error and
// reports {what it ran, the error}.
const epilogue = `
end
local function reported(ok, ...)
  if ok then return {table.concat(ran, '\30'), ...} end
  local e = ...
  if type(e) ~= 'table' or type(e.err) ~= 'string' then e = {err = tostring(e)} end
  return {table.concat(ran, '\30'), e}
end
return reported(pcall(script))`

// Script is a Lua script that reports the commands it ran.
type Script struct {
	lua *rueidis.Lua
}

// scripts are the app's scripts by SHA-1: the app sends EVALSHA, which
// names a script only by its hash.
var scripts sync.Map // sha1 hex -> name

// NewScript returns the script of src, shown on a page as name beside its hash.
func NewScript(name, src string) *Script {
	src = prelude + src + epilogue
	scripts.Store(sha1hex(src), name)
	return &Script{lua: rueidis.NewLuaScript(src)}
}

// scriptOf is the name of the script with hash sha, if it is one of ours.
func scriptOf(sha string) (string, bool) {
	n, ok := scripts.Load(sha)
	if !ok {
		return "", false
	}
	return n.(string), true
}

// Exec runs the script as rueidis.Lua.Exec does (EVALSHA, and EVAL if
// Redis does not know it yet) and returns its result.
func (s *Script) Exec(ctx context.Context, c rueidis.Client, keys, args []string) Reply {
	m, err := s.lua.Exec(ctx, c, keys, args).ToMessage()
	if err != nil {
		return Reply{err: err}
	}
	_, result, err := unwrap(&m)
	if err != nil {
		return Reply{err: err}
	}
	if result == nil {
		return Reply{err: rueidis.Nil}
	}
	return Reply{msg: *result}
}

var errNotReported = errors.New("redistrace: the script's reply is not {ran, result}")

// unwrap splits a script's reply; result is nil when the script returned
// nil or false. A script that failed gives what it ran and its error.
func unwrap(m *rueidis.RedisMessage) (ran string, result *rueidis.RedisMessage, err error) {
	parts, err := m.ToArray()
	if err != nil || len(parts) == 0 || !parts[0].IsString() {
		return "", nil, errNotReported
	}
	ran, _ = parts[0].ToString()
	if len(parts) > 1 && !parts[1].IsNil() {
		if err := parts[1].Error(); err != nil {
			return ran, nil, err
		}
		result = &parts[1]
	}
	return ran, result, nil
}

// Reply is a script's result, read as a rueidis.RedisResult is.
type Reply struct {
	msg rueidis.RedisMessage
	err error
}

// Error is the script's error, rueidis.Nil for a nil or false result.
func (r Reply) Error() error { return r.err }

// ToArray reads the result as an array.
func (r Reply) ToArray() ([]rueidis.RedisMessage, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.msg.ToArray()
}

// AsInt64 reads the result as an integer.
func (r Reply) AsInt64() (int64, error) {
	if r.err != nil {
		return 0, r.err
	}
	return r.msg.AsInt64()
}

// AsBytes reads the result as a string's bytes.
func (r Reply) AsBytes() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.msg.AsBytes()
}

// ToString reads the result as a string.
func (r Reply) ToString() (string, error) {
	if r.err != nil {
		return "", r.err
	}
	return r.msg.ToString()
}

// NextRan splits what a script ran into its first command and the rest, so a
// page walks it without allocating.
func NextRan(ran string) (cmd, rest string) {
	cmd, rest, _ = strings.Cut(ran, ranCommand)
	return cmd, rest
}

// NextArg splits a command into its first argument and the rest; more says
// whether another (maybe empty) follows.
func NextArg(cmd string) (arg, rest string, more bool) {
	return strings.Cut(cmd, ranArg)
}

// AsIntSlice reads the result as an array of integers.
func (r Reply) AsIntSlice() ([]int64, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.msg.AsIntSlice()
}

// AsStrMap reads the result as a map (a flat array of names and values).
func (r Reply) AsStrMap() (map[string]string, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.msg.AsStrMap()
}

// AsStrSlice reads the result as an array of strings.
func (r Reply) AsStrSlice() ([]string, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.msg.AsStrSlice()
}

// Kept is an argument as NextArg gives it: what the script kept of it, and
// whether that is only its start.
func Kept(arg string) (kept string, cut bool) {
	if i := strings.Index(arg, ranCut); i >= 0 {
		return arg[:i], true
	}
	return arg, false
}

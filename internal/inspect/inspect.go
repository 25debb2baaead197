// Package inspect reads keys the way a student would with redis-cli, for the
// "What's in Redis" panel: value, TTL and memory, in one round trip.
package inspect

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Entry is one string key as stored.
type Entry struct {
	Key    string
	Exists bool
	Value  []byte
	TTL    time.Duration // -1: no expiry
	Memory int64         // MEMORY USAGE, bytes
	// OtherType is the key's TYPE when it holds another type of value
	// than was asked for (changed by hand with redis-cli); Value is then
	// empty. "" for the type asked for.
	OtherType string
}

// Inspector reads keys.
type Inspector struct {
	rdb rueidis.Client
}

// New returns an Inspector over a rueidis client.
func New(rdb rueidis.Client) *Inspector { return &Inspector{rdb: rdb} }

// Key reads one string key: GET, PTTL and MEMORY USAGE pipelined.
func (in *Inspector) Key(ctx context.Context, key string) (Entry, error) {
	b := in.rdb.B()
	res := in.rdb.DoMulti(ctx,
		b.Get().Key(key).Build(),
		b.Pttl().Key(key).Build(),
		b.MemoryUsage().Key(key).Build(),
	)
	e := Entry{Key: key}
	v, err := res[0].AsBytes()
	if rueidis.IsRedisNil(err) {
		return e, nil
	}
	if err != nil {
		return in.otherType(ctx, e, "get", err, res[1], res[2])
	}
	e.Exists, e.Value = true, v
	return e, e.readTTLAndMemory(res[1], res[2])
}

// otherType reads what it can of a key the read (op) failed on: when it
// held another type of value (WRONGTYPE), which type, its TTL and memory, so
// a page shows the key as it is instead of failing; any other error is
// returned. The type comes from which of GET, HLEN and ZCARD it answers
// (the documented ACL user has no TYPE).
func (in *Inspector) otherType(ctx context.Context, e Entry, op string, err error, pttl, memory rueidis.RedisResult) (Entry, error) {
	if !isWrongType(err) {
		return e, fmt.Errorf("inspect: %s: %w", op, err)
	}
	b := in.rdb.B()
	res := in.rdb.DoMulti(ctx,
		b.Get().Key(e.Key).Build(),
		b.Hlen().Key(e.Key).Build(),
		b.Zcard().Key(e.Key).Build(),
	)
	e.OtherType = "list, set or stream"
	for i, t := range []string{"string", "hash", "zset"} {
		err := res[i].Error()
		if rueidis.IsRedisNil(err) {
			return Entry{Key: e.Key}, nil // deleted since
		}
		if err == nil {
			e.OtherType = t
			break
		}
		if !isWrongType(err) {
			return e, fmt.Errorf("inspect: %s: %w", op, err)
		}
	}
	e.Exists = true
	return e, e.readTTLAndMemory(pttl, memory)
}

func isWrongType(err error) bool { return err != nil && strings.Contains(err.Error(), "WRONGTYPE") }

// Pretty indents a JSON value with sorted keys (cjson writes them in any
// order, and a key that jumps on every click reads as a change); anything
// else is returned as is.
func Pretty(v []byte) string {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if d.Decode(&x) != nil || d.More() {
		return string(v)
	}
	var out bytes.Buffer
	e := json.NewEncoder(&out)
	e.SetEscapeHTML(false) // the page escapes it; \u003c would only confuse
	e.SetIndent("", "  ")
	if e.Encode(x) != nil { // maps encode with sorted keys
		return string(v)
	}
	return strings.TrimSuffix(out.String(), "\n")
}

// readTTLAndMemory fills in what PTTL and MEMORY USAGE answered for a key
// that exists.
func (e *Entry) readTTLAndMemory(pttl, memory rueidis.RedisResult) error {
	ttl, err := pttl.AsInt64()
	if err != nil {
		return fmt.Errorf("inspect: pttl: %w", err)
	}
	e.TTL = -1
	if ttl >= 0 {
		e.TTL = time.Duration(ttl) * time.Millisecond
	}
	if e.Memory, err = memory.AsInt64(); err != nil && !rueidis.IsRedisNil(err) {
		return fmt.Errorf("inspect: memory usage: %w", err)
	}
	return nil
}

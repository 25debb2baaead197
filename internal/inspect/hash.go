package inspect

import (
	"context"
	"encoding/json"
	"fmt"
)

// Hash reads one hash key as HGETALL, PTTL and MEMORY USAGE would, in one
// round trip; Value is the hash as a JSON object.
func (in *Inspector) Hash(ctx context.Context, key string) (Entry, error) {
	b := in.rdb.B()
	res := in.rdb.DoMulti(ctx,
		b.Hgetall().Key(key).Build(),
		b.Pttl().Key(key).Build(),
		b.MemoryUsage().Key(key).Build(),
	)
	e := Entry{Key: key}
	fields, err := res[0].AsStrMap()
	if err != nil {
		return in.otherType(ctx, e, "hgetall", err, res[1], res[2])
	}
	if len(fields) == 0 {
		return e, nil
	}
	obj := make(map[string]json.RawMessage, len(fields))
	for f, v := range fields {
		if json.Valid([]byte(v)) {
			obj[f] = json.RawMessage(v)
		} else {
			obj[f], _ = json.Marshal(v)
		}
	}
	if e.Value, err = json.Marshal(obj); err != nil {
		return e, fmt.Errorf("inspect: encode: %w", err)
	}
	e.Exists = true
	return e, e.readTTLAndMemory(res[1], res[2])
}

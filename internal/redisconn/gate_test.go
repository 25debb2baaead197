package redisconn

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/redis/rueidis"
	"github.com/sessionlab/sessionlab/internal/redistest"
)

// The gate reads the sentinels' failover events: the first step of a
// failover of the client's master set closes it, an abort opens it, and
// events about another master set or another master change nothing. The
// log says when it closes and when an abort opens it: an operator sees why
// requests answered 503 with no failover done.
func TestFailoverGateReadsSentinelEvents(t *testing.T) {
	rs := redistest.Start(t)
	var log bytes.Buffer
	g := &failoverGate{Client: rs.Client(t), masterSet: "mymaster", log: slog.New(slog.NewTextHandler(&log, nil))}
	host, port := "127.0.0.1", rs.Addr()[len("127.0.0.1:"):]
	get := func() error { return g.Do(context.Background(), g.B().Get().Key("k").Build()).Error() }
	isOpen := func() bool { err := get(); return err == nil || rueidis.IsRedisNil(err) }

	for _, tc := range []struct {
		name, channel, message string
		open                   bool
	}{
		{"another master set is not ours", "+selected-slave", "slave 127.0.0.1:7001 127.0.0.1 7001 @ other " + host + " " + port, true},
		{"a failover of another master is not ours", "+selected-slave", "slave 127.0.0.1:7001 127.0.0.1 7001 @ mymaster 127.0.0.1 1", true},
		{"the leader selects a replica to promote: closed", "+failover-state-select-slave", "master mymaster " + host + " " + port, false},
		{"the failover aborts: open", "-failover-abort-no-good-slave", "master mymaster " + host + " " + port, true},
		{"the replica is told to be master: closed", "+failover-state-send-slaveof-noone", "slave 127.0.0.1:7001 127.0.0.1 7001 @ mymaster " + host + " " + port, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.event(rueidis.PubSubMessage{Channel: tc.channel, Message: tc.message})
			if got := isOpen(); got != tc.open {
				t.Errorf("open = %v, want %v", got, tc.open)
			}
			// What sessionlab_redis_failover_gate_closed reports, through
			// the bounded client Connect returns.
			if closed := FailoverGateClosed(Bound(g, DefaultTimeout))(); closed == tc.open {
				t.Errorf("FailoverGateClosed = %v with the gate open = %v", closed, tc.open)
			}
		})
	}
	started, aborted := strings.Count(log.String(), "level=WARN msg=\"Redis Sentinel: a failover of the master started"),
		strings.Count(log.String(), "level=INFO msg=\"Redis Sentinel: the failover aborted; commands are accepted again\" why=-failover-abort-no-good-slave")
	if started != 2 || aborted != 1 {
		t.Errorf("the log says %d failovers started and %d aborted, want 2 and 1:\n%s", started, aborted, log.String())
	}
	t.Run("a refused command is unavailable, failing over, in a pipeline too", func(t *testing.T) {
		for _, err := range []error{get(), g.DoMulti(context.Background(), g.B().Get().Key("a").Build(), g.B().Get().Key("b").Build())[1].Error()} {
			if kind, ok := Unavailable(err); !ok || kind != FailingOver || !errors.Is(err, ErrFailingOver) {
				t.Errorf("%v: %q, %v; want %q", err, kind, ok, FailingOver)
			}
			if FailingOver.MayHaveRun() {
				t.Error("a refused command may have run?")
			}
		}
	})
}

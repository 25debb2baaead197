package sessions

import (
	"strconv"
	"testing"
	"time"
)

func TestIssued(t *testing.T) {
	t.Run("knows the sessions it stored and no others", func(t *testing.T) {
		var s Issued
		s.Add("token-a", time.Now().Add(time.Hour))
		if !s.Has("token-a") {
			t.Error("a stored session is not known")
		}
		if s.Has("token-b") {
			t.Error("a session never stored is known")
		}
	})
	t.Run("forgets expired sessions when it sweeps", func(t *testing.T) {
		var s Issued
		s.Add("old", time.Now().Add(-time.Second))
		for i := range sweepEvery {
			s.Add("t"+strconv.Itoa(i), time.Now().Add(time.Hour))
		}
		if s.Has("old") {
			t.Error("an expired session outlived a sweep")
		}
		if !s.Has("t1") {
			t.Error("a live session was swept")
		}
	})
}

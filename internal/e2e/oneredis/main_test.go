// Package oneredis tests several app processes on one Redis: shared
// sessions and live updates, revocation and counts racing across
// processes, a class behind one address, the documented ACL user.
//
// It is one of the end-to-end packages under internal/e2e, which go test
// runs side by side; each test starts its own redis-server and app.
package oneredis

import (
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// bin is the app binary, built once for all tests in this package.
var bin string

func TestMain(m *testing.M) { apptest.Main(m, &bin) }

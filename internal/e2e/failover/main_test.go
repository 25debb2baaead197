// Package failover tests the app while its Redis fails: an outage and a
// restart, a sentinel failover, and the nemesis (failovers and stalls while
// sessions count).
//
// It is one of the end-to-end packages under internal/e2e, which go test
// runs side by side; each test starts its own redis-server and app.
package failover

import (
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// bin is the app binary, built once for all tests in this package.
var bin string

func TestMain(m *testing.M) { apptest.Main(m, &bin) }

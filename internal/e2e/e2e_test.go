// Package e2e tests the built sessionlab binary in real headless Chromium,
// as users meet it. Each test starts its own redis-server and app on free
// ports and gets its own browser context in the package's one Chromium
// (chrome_test.go); most run in parallel.
//
// The end-to-end tests without a browser are in the packages below this
// one (proxy, failover, process, oneredis), which go test runs side by
// side with this one.
package e2e

import (
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// bin is the app binary, built once for all tests in this package.
var bin string

func TestMain(m *testing.M) { apptest.Main(m, &bin, chromium.stop) }

// Package process tests the built binary as a process: SIGTERM and its
// drain, restarts, stuck streams, the soak, metrics and logs, the image.
//
// It is one of the end-to-end packages under internal/e2e, which go test
// runs side by side; each test starts its own redis-server and app.
package process

import (
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// bin is the app binary, built once for all tests in this package.
var bin string

func TestMain(m *testing.M) { apptest.Main(m, &bin) }

// Package proxy tests the app past one machine: `go tool task cluster`'s
// program (nginx with TLS and HTTP/2 over three instances, a Redis master,
// replica and three sentinels) and the binary behind a TLS proxy.
//
// It is one of the end-to-end packages under internal/e2e, which go test
// runs side by side; each test starts its own redis-server and app.
package proxy

import (
	"testing"

	"github.com/sessionlab/sessionlab/internal/apptest"
)

// bin is the app binary, built once for all tests in this package.
var bin string

func TestMain(m *testing.M) { apptest.Main(m, &bin) }

//go:build !linux

package handlers

import "net"

// unsent cannot tell here: only the write deadline drops a stuck client.
func unsent(net.Conn) (int, bool) { return 0, false }

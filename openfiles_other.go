//go:build !unix

package main

// openFilesLimit is unknown here: no process bound on connections.
func openFilesLimit() uint64 { return 0 }

// Package bench holds the load benchmark (BenchmarkLoad): wrk against the
// built app's /count and /profile, beside the machine's ceiling and the
// issue's targets. Run `go tool task bench`; load_test.go has the knobs.
package bench

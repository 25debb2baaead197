// Package bench holds sessionlab's load benchmark (BenchmarkLoad): it starts
// its own redis-server and the built app, logs in, drives wrk against
// GET /count and GET /profile, optionally against a second server (the
// tutorial's Express app) interleaved cell by cell, measures the machine's
// ceiling (servers that do less than the app, and Redis alone), and prints
// one table with the targets beside the figures. Run it with
// `go tool task bench`; see load_test.go for the knobs.
package bench

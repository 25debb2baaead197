// Package requestlog carries a request's id in its context and puts it on
// every log line written with that context.
package requestlog

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"

	"github.com/sessionlab/sessionlab/internal/metrics"
)

// Info is what the app knows about a request while it is served. The first
// middleware makes it; later ones fill it in (the route that matched).
type Info struct {
	ID    string
	Route *metrics.Route // the matched route's (set by the route table); nil: none matched
	// Proxied: ID is a trusted proxy's, the same on its retries of one
	// request; else it is the app's own, new for each.
	Proxied bool
}

type key struct{}

// With returns ctx carrying info.
func With(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, key{}, info)
}

// From is the request's Info, or nil outside a request.
func From(ctx context.Context) *Info {
	info, _ := ctx.Value(key{}).(*Info)
	return info
}

// NewID is a fresh request id: 16 hex digits, random. It is a label, not a
// secret, so the runtime's fast generator is enough.
func NewID() string {
	var b [16]byte
	s := strconv.AppendUint(b[:0], rand.Uint64()|1<<63, 16) // always 16 digits
	return string(s)
}

// ValidID reports whether a proxy's id may be kept: 1 to 128 printable ASCII
// characters without spaces, so it cannot forge a log line or a header.
func ValidID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// NewLogger is the app's logger: JSON or text ("json", "text") at level,
// with the request id on every line logged with a request's context.
func NewLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(withID{h})
}

// withID adds request_id to records logged with a request's context.
type withID struct{ slog.Handler }

func (h withID) Handle(ctx context.Context, r slog.Record) error {
	if info := From(ctx); info != nil && info.ID != "" {
		r.AddAttrs(slog.String("request_id", info.ID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h withID) WithAttrs(attrs []slog.Attr) slog.Handler { return withID{h.Handler.WithAttrs(attrs)} }

func (h withID) WithGroup(name string) slog.Handler { return withID{h.Handler.WithGroup(name)} }
